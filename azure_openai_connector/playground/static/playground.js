// The playground page: renders the connector's forms with the vendored ConnectorForms bundle
// (react-jsonschema-form), runs the chosen action through POST /api/run, and offers the live options
// of inputs marked x-options (POST /api/options) as a datalist on their text input.
// The access token comes in a meta tag and goes back in the X-Playground-Token header (the cookie
// alone runs nothing); nothing is stored in the browser.
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
    // The cookie alone is not enough to run a step: the token travels in a header only this page sets.
    const tokenMeta = document.querySelector('meta[name="playground-token"]');
    if (tokenMeta) { init.headers["X-Playground-Token"] = tokenMeta.content; }
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
      idPrefix: "connection", onChange: connectionChanged,
    });
  }

  // --- live options: a datalist (a select that still takes free text) on each input whose
  // manifest field names an options source (x-options); the connector document lists them per
  // action as option_inputs, since the form's schema leaves x- keywords out.

  let optionsTicket = 0;
  let connectionTimer = null;

  function optionListId(name) { return `options-${name}`; }

  function optionLists() {
    let box = $("option-lists");
    if (!box) {
      box = document.createElement("div");
      box.id = "option-lists";
      box.hidden = true;
      document.body.appendChild(box);
    }
    return box;
  }

  // Point each option input at its list (RJSF may re-create the input as the form changes).
  function attachOptionLists() {
    if (!state.action) return;
    for (const name of state.action.option_inputs || []) {
      const field = document.getElementById(`inputs_${name}`);
      if (!field || field.tagName !== "INPUT") continue;
      const list = document.getElementById(optionListId(name));
      if (list) {
        if (field.getAttribute("list") !== list.id) field.setAttribute("list", list.id);
      } else if (field.hasAttribute("list")) {
        field.removeAttribute("list");
      }
    }
  }

  function fillOptionList(name, options) {
    const list = document.createElement("datalist");
    list.id = optionListId(name);
    for (const option of options) {
      const item = document.createElement("option");
      const status = option.lifecycle && option.lifecycle.status;
      item.value = String(option.value);
      item.label = option.label || String(option.value);
      if (status) item.dataset.status = status;
      list.appendChild(item);
    }
    const old = document.getElementById(list.id);
    if (old) old.replaceWith(list); else optionLists().appendChild(list);
  }

  function dropOptionList(name) {
    const old = document.getElementById(optionListId(name));
    if (old) old.remove();
  }

  // Fetch the options of the current action's option inputs on the page's connection; a failure
  // leaves the field a plain text box.
  async function loadOptions() {
    if (!state.action || !state.connection) return;
    const action = state.action;
    const ticket = ++optionsTicket;
    delete document.body.dataset.options;
    const connection = state.connection.getFormData();
    for (const name of action.option_inputs || []) dropOptionList(name);
    attachOptionLists();
    for (const name of action.option_inputs || []) {
      let answer = null;
      try {
        answer = await api("/api/options", { action: action.key, input: name, connection });
      } catch (err) {
        answer = null;
      }
      if (ticket !== optionsTicket) return;
      if (answer && answer.ok && Array.isArray(answer.options)) fillOptionList(name, answer.options);
      else dropOptionList(name);
      attachOptionLists();
    }
    if (ticket === optionsTicket) document.body.dataset.options = action.key;
  }

  function connectionChanged() {
    clearTimeout(connectionTimer);
    connectionTimer = setTimeout(loadOptions, 600);
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
    loadOptions();
    if (location.hash !== "#" + action.key) history.replaceState(null, "", "#" + action.key);
    setStatus("");
  }

  // A form with per-value rules (allOf/if/then) hides fields as the data changes: drop the values
  // of hidden fields as they go, or a value the page no longer shows would be sent (and refused).
  function rulesProps(schema) {
    return Array.isArray(schema.allOf) && schema.allOf.some((rule) => rule && rule.if)
      ? { omitExtraData: true, liveOmit: true } : {};
  }

  function renderAction(formData) {
    const form = state.action.form;
    state.form = Forms.render($("action-form"), {
      schema: form.schema, uiSchema: noSubmitButton(form.uiSchema), formData, idPrefix: "inputs",
      formProps: rulesProps(form.schema),
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
    scrollToFirstError();
  }

  function bringIntoView(node) {
    const box = node.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) node.scrollIntoView({ block: "start" });
  }

  // Bring the first field in error into view (connection form first, as on the page) and focus it.
  function scrollToFirstError() {
    const failing = document.querySelector(
      "#connection-form .has-error, #connection-form .json-invalid, #action-form .has-error, #action-form .json-invalid");
    if (!failing) return;
    const group = failing.closest("details");
    if (group && !group.open) group.open = true;
    failing.scrollIntoView({ block: "center" });
    const input = failing.matches("input, select, textarea") ? failing : failing.querySelector("input, select, textarea");
    if (input) input.focus({ preventScroll: true });
  }

  // --- running ----------------------------------------------------------------------------

  function shorten(value) {
    return JSON.stringify(value, (key, v) => (typeof v === "string" && v.length > MAX_SHOWN_STRING
      ? `${v.slice(0, MAX_SHOWN_STRING)}… (${v.length} characters; Copy JSON has them all)` : v), 2);
  }

  // --- the answer panel: what a person wants to read, above the raw JSON ----------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function imageSource(image) {
    if (image.b64_json) {
      const kind = image.b64_json.startsWith("/9j/") ? "jpeg" : image.b64_json.startsWith("UklGR") ? "webp" : "png";
      return `data:image/${kind};base64,${image.b64_json}`;
    }
    return image.url || null;
  }

  function toolCallsOf(result) {
    const choice = Array.isArray(result.choices) ? result.choices[0] : null;
    const calls = choice && choice.message && Array.isArray(choice.message.tool_calls) ? choice.message.tool_calls : [];
    return calls.filter((call) => call && call.function);
  }

  function answerParts(result) {
    const parts = [];
    if (!result || typeof result !== "object") return parts;
    if (typeof result.content === "string") parts.push(element("div", "answer-text", result.content));
    if (typeof result.summary === "string") parts.push(element("div", "answer-text", result.summary));
    if (Array.isArray(result.results)) {
      const list = element("ol", "answer-list");
      for (const item of result.results) {
        const entry = element("li", item.error ? "failed" : "");
        entry.append(element("div", "answer-prompt", item.prompt),
          item.error ? element("div", "answer-error", `${item.error.type}: ${item.error.message}`)
            : element("div", "answer-text", item.content || ""));
        list.appendChild(entry);
      }
      parts.push(list);
    }
    if (Array.isArray(result.images)) {
      const box = element("div", "answer-images");
      for (const image of result.images) {
        const src = imageSource(image);
        if (!src) continue;
        const figure = element("figure");
        const img = element("img");
        img.src = src;
        img.alt = image.revised_prompt || "generated image";
        figure.appendChild(img);
        if (image.revised_prompt) figure.appendChild(element("figcaption", "", image.revised_prompt));
        box.appendChild(figure);
      }
      for (const failure of result.errors || []) {
        box.appendChild(element("div", "answer-error", `image ${failure.index + 1}: ${failure.error.message}`));
      }
      parts.push(box);
    }
    const calls = toolCallsOf(result);
    if (calls.length) {
      const list = element("ul", "answer-tools");
      for (const call of calls) {
        const entry = element("li");
        entry.append(element("code", "tool-name", call.function.name), element("pre", "tool-arguments",
          prettyArguments(call.function.arguments)));
        list.appendChild(entry);
      }
      parts.push(element("h3", "", "Tool calls"), list);
    }
    if (!parts.length && "status" in result && "data" in result) {
      parts.push(element("div", "answer-text", `HTTP ${result.status}`));
    }
    return parts;
  }

  function prettyArguments(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (err) { return String(text); }
  }

  function showAnswerPanel(answer) {
    const panel = $("answer");
    panel.textContent = "";
    const parts = answer.ok ? answerParts(answer.result) : [];
    panel.append(...parts);
    panel.hidden = parts.length === 0;
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
    showAnswerPanel(answer);
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
      scrollToFirstError();
      return;
    }
    const request = { action: state.action.key, connection: state.connection.getFormData(),
      inputs: state.form.getFormData() };
    $("run").disabled = true;
    setStatus(`Running ${state.action.label}…`, "busy");
    try {
      const answer = await api("/api/run", request);
      showAnswer(answer);
      setStatus("");
      // In one column (a narrow window) the result sits below the forms: bring it into view,
      // unless field errors were just brought there instead.
      if (answer.ok || answer.error.type !== "invalid_input") bringIntoView($("result-meta"));
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
    // Links in help text open beside the page, which keeps what was typed into the forms.
    document.addEventListener("click", (e) => {
      const link = e.target.closest ? e.target.closest(".forms a[href]") : null;
      if (!link) return;
      e.preventDefault();
      window.open(link.href, "_blank", "noopener,noreferrer");
    });
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
    new MutationObserver(attachOptionLists).observe($("action-form"), { childList: true, subtree: true });
    selectAction(decodeURIComponent(location.hash.slice(1)));
    window.addEventListener("hashchange", () => selectAction(decodeURIComponent(location.hash.slice(1))));
    $("run").disabled = false;
    document.body.dataset.ready = "true";
  }

  start();
})();
