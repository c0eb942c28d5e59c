// The playground page: renders the connector's forms with the vendored ConnectorForms bundle
// (react-jsonschema-form) and runs the chosen action through POST /api/run.
// The access token travels in an HttpOnly cookie; nothing is stored in the browser.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const Forms = window.ConnectorForms;
  const MAX_SHOWN_STRING = 2000;
  const state = { connector: null, action: null, connection: null, form: null, drafts: {}, lastJson: "" };

  function noSubmitButton(uiSchema) {
    return Object.assign({}, uiSchema, { "ui:submitButtonOptions": { norender: true } });
  }

  async function api(path, body) {
    const init = { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (err) { /* not JSON */ }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.statusText;
      throw new Error(`${response.status}: ${message}`);
    }
    return data;
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = kind || "";
  }

  // --- forms ------------------------------------------------------------------------------

  function renderConnection() {
    const form = state.connector.connection.form;
    state.connection = Forms.render($("connection-form"), {
      schema: form.schema, uiSchema: noSubmitButton(form.uiSchema), formData: form.formData,
      idPrefix: "connection",
    });
  }

  function selectAction(key) {
    const action = state.connector.actions.find((a) => a.key === key) || state.connector.actions[0];
    if (state.action && state.form) state.drafts[state.action.key] = state.form.getFormData();
    state.action = action;
    for (const item of document.querySelectorAll("#action-list button")) {
      item.setAttribute("aria-current", item.dataset.action === action.key ? "true" : "false");
    }
    const draft = state.drafts[action.key];
    renderAction(draft === undefined ? action.form.formData : draft);
    if (location.hash !== "#" + action.key) history.replaceState(null, "", "#" + action.key);
    setStatus("");
  }

  function renderAction(formData) {
    const form = state.action.form;
    state.form = Forms.render($("action-form"), {
      schema: form.schema, uiSchema: noSubmitButton(form.uiSchema), formData, idPrefix: "inputs",
    });
  }

  function resetAction() {
    delete state.drafts[state.action.key];
    renderAction(state.action.form.formData);
    setStatus("Defaults restored");
  }

  // Server-side field errors go next to their fields: connection/... to the connection form.
  function showFieldErrors(errors) {
    const connection = [];
    const inputs = [];
    for (const item of errors || []) {
      const path = String(item.path || "");
      if (path === "connection" || path.startsWith("connection/")) {
        connection.push({ path: path.slice("connection/".length), message: item.message });
      } else {
        inputs.push({ path: path === "action" ? "" : path, message: item.message });
      }
    }
    state.connection.setExtraErrors(Forms.errorSchemaFromPaths(connection));
    state.form.setExtraErrors(Forms.errorSchemaFromPaths(inputs));
    if (connection.length) $("connection-section").open = true;
  }

  // --- running ----------------------------------------------------------------------------

  function shorten(value) {
    return JSON.stringify(value, (key, v) => (typeof v === "string" && v.length > MAX_SHOWN_STRING
      ? `${v.slice(0, MAX_SHOWN_STRING)}… (${v.length} characters; Copy JSON has them all)` : v), 2);
  }

  function showImages(result) {
    const box = $("images");
    box.textContent = "";
    for (const image of (result && Array.isArray(result.images) ? result.images : [])) {
      const src = image.b64_json ? `data:image/png;base64,${image.b64_json}` : image.url;
      if (!src) continue;
      const img = document.createElement("img");
      img.src = src;
      img.alt = image.revised_prompt || "generated image";
      box.appendChild(img);
    }
  }

  function showAnswer(answer) {
    const where = answer.ran_on ? ` · ${answer.ran_on.source} (${answer.ran_on.service})` : "";
    const meta = $("result-meta");
    meta.className = answer.ok ? "note ok" : "note failed";
    meta.textContent = answer.ok
      ? `ok · ${answer.duration_ms} ms${where}`
      : `${answer.error.type}: ${answer.error.message} · ${answer.duration_ms} ms${where}`;
    const shown = answer.ok ? answer.result : { error: answer.error };
    state.lastJson = JSON.stringify(shown, null, 2);
    $("result").textContent = shorten(shown);
    $("result").className = answer.ok ? "ok" : "failed";
    $("copy").hidden = false;
    showImages(answer.ok ? answer.result : null);
    if (!answer.ok && answer.error.type === "invalid_input") showFieldErrors(answer.error.errors);
  }

  async function run() {
    if (!state.form || $("run").disabled) return;
    state.connection.setExtraErrors(null);
    state.form.setExtraErrors(null);
    const checked = [state.connection.validate(), state.form.validate()];
    if (checked[0].errors.length) $("connection-section").open = true;
    if (checked.some((c) => c.errors.length)) {
      setStatus("Fix the fields marked in red", "failed");
      return;
    }
    const request = { action: state.action.key, connection: state.connection.getFormData(),
      inputs: state.form.getFormData() };
    $("run").disabled = true;
    setStatus(`Running ${state.action.label}…`, "busy");
    try {
      showAnswer(await api("/api/run", request));
      setStatus("");
    } catch (err) {
      setStatus(String(err.message || err), "failed");
    } finally {
      $("run").disabled = false;
    }
  }

  // --- start ------------------------------------------------------------------------------

  function showConnector(doc) {
    const c = doc.connector;
    document.title = `${c.label} · playground`;
    $("connector-label").textContent = `${c.label} ${c.version ? "· " + c.version : ""}`;
    $("connector-description").textContent = c.description || "";
    if (c.icon) { $("connector-icon").src = c.icon; $("connector-icon").hidden = false; }
    $("connection-label").textContent = doc.connection.label;
    $("server-connection").textContent = doc.server_connection.note;
    const list = $("action-list");
    for (const action of doc.actions) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.action = action.key;
      button.title = action.description;
      const label = document.createElement("span");
      label.textContent = action.label;
      const key = document.createElement("code");
      key.textContent = action.key;
      button.append(label, key);
      button.addEventListener("click", () => selectAction(action.key));
      const item = document.createElement("li");
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  async function start() {
    if (!Forms) { setStatus("The forms bundle did not load", "failed"); return; }
    $("run").addEventListener("click", run);
    $("reset").addEventListener("click", resetAction);
    $("copy").addEventListener("click", () => navigator.clipboard.writeText(state.lastJson)
      .then(() => setStatus("Result copied"), () => setStatus("Copy failed", "failed")));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
    });
    try {
      state.connector = await api("/api/connector");
    } catch (err) {
      setStatus(`Cannot load the connector: ${err.message}`, "failed");
      return;
    }
    showConnector(state.connector);
    renderConnection();
    selectAction(decodeURIComponent(location.hash.slice(1)));
    window.addEventListener("hashchange", () => selectAction(decodeURIComponent(location.hash.slice(1))));
    $("run").disabled = false;
    document.body.dataset.ready = "true";
  }

  start();
})();
