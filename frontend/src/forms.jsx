// ConnectorForms: a tiny browser global around react-jsonschema-form (RJSF).
//
// Built by ../build.sh into azure_openai_connector/playground/static/forms.bundle.js
// (IIFE, minified). The page that loads the bundle calls
//
//   const handle = window.ConnectorForms.render(element, {schema, uiSchema, formData, ...});
//
// Schemas are JSON Schema draft-07, validated with @rjsf/validator-ajv8.
import React, { useContext, useEffect, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import Form, { getDefaultRegistry } from "@rjsf/core";
import { ariaDescribedByIds, descriptionId, getUiOptions } from "@rjsf/utils";
import validator from "@rjsf/validator-ajv8";
import { version as rjsfVersion } from "@rjsf/core/package.json";

const ID_SEPARATOR = "_";

// ---------------------------------------------------------------------------------------------
// JsonField ("ui:field": "json"): a text area holding JSON.stringify(value, null, 2).
//
// Valid JSON goes to the form data as the parsed value (an empty text area unsets the field).
// While the text is not valid JSON the text is kept, the form data keeps the last valid value,
// an inline error is shown, and the form's validation (validate(), submit) refuses the form:
// every render() registers a customValidate that reports the fields whose text does not parse.

// Per-form registry of JSON fields whose text does not parse: field id -> message.
const JsonTextErrors = React.createContext(null);

function toText(value) {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

function sameJson(a, b) {
  return toText(a) === toText(b);
}

function parseJson(text) {
  if (text.trim() === "") return { value: undefined };
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `is not valid JSON: ${err && err.message ? err.message : err}` };
  }
}

// Errors below the field itself ({x: {__errors: [...]}} for a JSON object), as "x: message".
function nestedErrors(errorSchema, prefix) {
  const out = [];
  for (const [key, node] of Object.entries(errorSchema || {})) {
    if (key === "__errors" || !node || typeof node !== "object") continue;
    const path = prefix ? `${prefix}/${key}` : key;
    for (const message of node.__errors || []) out.push(`${path}: ${message}`);
    out.push(...nestedErrors(node, path));
  }
  return out;
}

function JsonField(props) {
  const { idSchema, schema, uiSchema, formData, onChange, onBlur, onFocus, required, disabled, readonly,
    autofocus, name, rawErrors, errorSchema, registry } = props;
  const id = idSchema.$id;
  const options = getUiOptions(uiSchema, registry && registry.globalUiOptions);
  const title = options.title || schema.title || name;
  const description = options.description || schema.description;
  const invalid = useContext(JsonTextErrors);
  const [text, setText] = useState(() => toText(formData));
  const [parseError, setParseError] = useState(null);
  const emitted = useRef(formData);

  // Show values set from outside (setFormData, defaults) unless they are what we emitted.
  useEffect(() => {
    if (!sameJson(formData, emitted.current)) {
      emitted.current = formData;
      setText(toText(formData));
      setParseError(null);
      if (invalid) invalid.delete(id);
    }
  }, [formData]);
  useEffect(() => () => { if (invalid) invalid.delete(id); }, [id]);

  const handleChange = (event) => {
    const next = event.target.value;
    setText(next);
    const parsed = parseJson(next);
    if (parsed.error) {
      setParseError(parsed.error);
      if (invalid) invalid.set(id, parsed.error);
      return;
    }
    setParseError(null);
    if (invalid) invalid.delete(id);
    emitted.current = parsed.value;
    onChange(parsed.value);
  };

  const lines = text.split("\n").length;
  const rows = options.rows || Math.min(Math.max(lines, 3), 16);
  const shownParseError = parseError && !(rawErrors || []).includes(parseError) ? parseError : null;
  const below = nestedErrors(errorSchema, "");
  return (
    <div className="json-field">
      <label className="control-label" htmlFor={id}>
        {title}
        {required ? <span className="required">*</span> : null}
      </label>
      {description ? <p id={descriptionId(id)} className="field-description">{description}</p> : null}
      <textarea
        id={id}
        name={id}
        className={"form-control json-editor" + (parseError ? " json-invalid" : "")}
        rows={rows}
        spellCheck={false}
        value={text}
        placeholder={options.placeholder || "JSON"}
        required={required}
        disabled={disabled}
        readOnly={readonly}
        autoFocus={autofocus}
        aria-invalid={parseError ? "true" : undefined}
        aria-describedby={ariaDescribedByIds(id)}
        onChange={handleChange}
        onBlur={onBlur ? () => onBlur(id, emitted.current) : undefined}
        onFocus={onFocus ? () => onFocus(id, emitted.current) : undefined}
      />
      {shownParseError || below.length ? (
        <ul className="error-detail json-field-errors">
          {shownParseError ? <li className="text-danger">{shownParseError}</li> : null}
          {below.map((message, i) => <li key={i} className="text-danger">{message}</li>)}
        </ul>
      ) : null}
    </div>
  );
}

// The slash path of the (object-nested) field whose id is `id`, or null.
function pathOfId(schema, id, prefix, path) {
  const properties = schema && typeof schema === "object" ? schema.properties : null;
  if (!properties || typeof properties !== "object") return null;
  for (const key of Object.keys(properties)) {
    const childId = prefix + ID_SEPARATOR + key;
    if (childId === id) return [...path, key];
    if (id.startsWith(childId + ID_SEPARATOR)) {
      const found = pathOfId(properties[key], id, childId, [...path, key]);
      if (found) return found;
    }
  }
  return null;
}

function addError(errors, path, message) {
  let node = errors;
  for (const segment of path) {
    if (!node[segment] || typeof node[segment] !== "object") node[segment] = {};
    node = node[segment];
  }
  if (typeof node.addError === "function") node.addError(message);
  else (node.__errors = node.__errors || []).push(message);
}

// ---------------------------------------------------------------------------------------------
// Field groups: a root uiSchema "ui:options": {"groups": [{"title": "Advanced", "fields": [...],
// "collapsed": true}]} puts those fields, in their usual order, in a collapsible <details>
// section after the other fields. The form data stays flat. A group opens by itself when one of
// its fields has an error. Without "groups" this is RJSF's own ObjectFieldTemplate.

const DefaultObjectFieldTemplate = getDefaultRegistry().templates.ObjectFieldTemplate;

function hasErrors(errorSchema) {
  if (!errorSchema || typeof errorSchema !== "object") return false;
  return Object.entries(errorSchema).some(([key, node]) =>
    key === "__errors" ? Array.isArray(node) && node.length > 0 : hasErrors(node));
}

function FieldGroup({ id, title, collapsed, failing, children }) {
  const [open, setOpen] = useState(!collapsed || failing);
  // Open in the same render that brings the errors (no effect, so no frame without them).
  const [wasFailing, setWasFailing] = useState(failing);
  if (failing !== wasFailing) {
    setWasFailing(failing);
    if (failing && !open) setOpen(true);
  }
  return (
    <details id={id} className="field-group" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary className="field-group-title">{title}</summary>
      <div className="field-group-body">{children}</div>
    </details>
  );
}

function GroupedObjectFieldTemplate(props) {
  const groups = getUiOptions(props.uiSchema).groups;
  if (!Array.isArray(groups) || groups.length === 0) return <DefaultObjectFieldTemplate {...props} />;
  const grouped = new Map();
  groups.forEach((group, index) => (group.fields || []).forEach((name) => {
    if (!grouped.has(name)) grouped.set(name, index);
  }));
  const properties = props.properties.filter((p) => !grouped.has(p.name));
  groups.forEach((group, index) => {
    const members = props.properties.filter((p) => grouped.get(p.name) === index);
    if (members.length === 0) return;
    const key = group.key || String(index);
    const failing = members.some((p) => hasErrors((props.errorSchema || {})[p.name]));
    properties.push({
      name: `__group_${key}`,
      hidden: false,
      content: (
        <FieldGroup key={`__group_${key}`} id={`${props.idSchema.$id}${ID_SEPARATOR}__group_${key}`}
          title={group.title || key} collapsed={!!group.collapsed} failing={failing}>
          {members.map((p) => p.content)}
        </FieldGroup>
      ),
    });
  });
  return <DefaultObjectFieldTemplate {...props} properties={properties} />;
}

// One React root per host element, so render() may be called again on the same element.
const roots = new WeakMap();

function withSubmitLabel(uiSchema, submitLabel) {
  const ui = uiSchema && typeof uiSchema === "object" ? uiSchema : {};
  if (submitLabel === undefined || submitLabel === null) return ui;
  const key = "ui:submitButtonOptions";
  return { ...ui, [key]: { ...(ui[key] || {}), submitText: String(submitLabel) } };
}

function isEmptyErrorSchema(e) {
  return !e || typeof e !== "object" || Object.keys(e).length === 0;
}

/**
 * Mount an RJSF Form into `element`.
 *
 * options: {schema, uiSchema, formData, onSubmit(formData), onChange(formData), onError(errors),
 *           extraErrors, liveValidate, submitLabel, idPrefix, disabled, readonly,
 *           noHtml5Validate (default true: RJSF/ajv shows the errors, not the browser),
 *           formProps (any further RJSF Form props)}
 *
 * Defaults beyond RJSF's own: the fields {json: JsonField} ("ui:field": "json"), an
 * ObjectFieldTemplate honouring "ui:options": {"groups": [...]}, and optional lists with a
 * minItems that start empty (RJSF would otherwise fill them with empty, invalid items).
 */
function render(element, options) {
  if (!element || typeof element !== "object" || !("nodeType" in element)) {
    throw new TypeError("ConnectorForms.render: a DOM element is required");
  }
  const opts = options || {};
  const previous = roots.get(element);
  if (previous) previous.unmount();

  const root = createRoot(element);
  const formRef = React.createRef();
  let formData = opts.formData;
  let extraErrors = isEmptyErrorSchema(opts.extraErrors) ? undefined : opts.extraErrors;
  let mounted = true;
  const uiSchema = withSubmitLabel(opts.uiSchema, opts.submitLabel);

  const currentFormData = () => (formRef.current ? formRef.current.state.formData : formData);
  const formProps = opts.formProps || {};
  const idPrefix = opts.idPrefix || formProps.idPrefix || "root";
  const invalidJson = new Map();

  // Refuse the form while a JSON field holds text that does not parse.
  function customValidate(data, errors, ui) {
    const result = formProps.customValidate ? formProps.customValidate(data, errors, ui) : errors;
    for (const [id, message] of invalidJson) {
      const path = pathOfId(opts.schema || {}, id, idPrefix, []);
      addError(result, path || [], path ? message : `${id.slice(idPrefix.length + 1)} ${message}`);
    }
    return result;
  }

  function paint() {
    const props = {
      experimental_defaultFormStateBehavior: { arrayMinItems: { populate: "requiredOnly" } },
      ...formProps,
      fields: { json: JsonField, ...(formProps.fields || {}) },
      templates: { ObjectFieldTemplate: GroupedObjectFieldTemplate, ...(formProps.templates || {}) },
      customValidate,
      ref: formRef,
      schema: opts.schema || {},
      uiSchema,
      formData,
      validator,
      liveValidate: !!opts.liveValidate,
      noHtml5Validate: opts.noHtml5Validate === undefined ? true : !!opts.noHtml5Validate,
      disabled: !!opts.disabled,
      readonly: !!opts.readonly,
      onChange: (state) => {
        formData = state.formData;
        if (opts.onChange) opts.onChange(state.formData);
      },
      onSubmit: (state) => {
        formData = state.formData;
        if (opts.onSubmit) opts.onSubmit(state.formData);
      },
      onError: (errors) => {
        if (opts.onError) opts.onError(errors);
      },
    };
    if (opts.idPrefix) props.idPrefix = opts.idPrefix;
    if (extraErrors) props.extraErrors = extraErrors;
    flushSync(() => root.render(
      <JsonTextErrors.Provider value={invalidJson}><Form {...props} /></JsonTextErrors.Provider>));
  }

  function alive() {
    if (!mounted) throw new Error("ConnectorForms: the form has been unmounted");
  }

  paint();
  const handle = {
    getFormData() {
      return currentFormData();
    },
    setFormData(data) {
      alive();
      formData = data;
      paint();
    },
    setExtraErrors(errorSchema) {
      alive();
      formData = currentFormData();
      extraErrors = isEmptyErrorSchema(errorSchema) ? undefined : errorSchema;
      paint();
    },
    submit() {
      alive();
      formRef.current.submit();
    },
    // Validates the current data against the schema, shows the errors in the form (as a
    // submit would) and returns {errors: [{property, message, name, params, stack, schemaPath}], errorSchema}.
    validate() {
      alive();
      const form = formRef.current;
      flushSync(() => form.validateForm());
      const result = form.validate(form.state.formData);
      return { errors: result.errors, errorSchema: result.errorSchema };
    },
    unmount() {
      if (!mounted) return;
      mounted = false;
      formData = currentFormData();
      if (roots.get(element) === handle) roots.delete(element);
      root.unmount();
    },
  };
  roots.set(element, handle);
  return handle;
}

function decodeSegment(segment) {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

/**
 * Build an RJSF ErrorSchema from [{path: "messages/0/role", message: "..."}].
 * Paths are slash-separated (a leading "/" or "#/" is allowed; JSON-pointer "~1"/"~0" are decoded);
 * an empty path puts the message on the root's `__errors`. A path may also be an array of segments.
 */
function errorSchemaFromPaths(items) {
  const schema = {};
  for (const item of items || []) {
    if (!item) continue;
    const raw = item.path === undefined || item.path === null ? "" : item.path;
    const segments = Array.isArray(raw)
      ? raw.map(String)
      : String(raw).replace(/^#/, "").split("/").filter((s) => s !== "").map(decodeSegment);
    let node = schema;
    for (const segment of segments) {
      if (!node[segment] || typeof node[segment] !== "object") node[segment] = {};
      node = node[segment];
    }
    if (!Array.isArray(node.__errors)) node.__errors = [];
    node.__errors.push(String(item.message === undefined ? "" : item.message));
  }
  return schema;
}

const ConnectorForms = {
  version: rjsfVersion,
  reactVersion: React.version,
  render,
  errorSchemaFromPaths,
  fields: { json: JsonField },
  templates: { ObjectFieldTemplate: GroupedObjectFieldTemplate },
};

if (typeof window !== "undefined") window.ConnectorForms = ConnectorForms;

export default ConnectorForms;
