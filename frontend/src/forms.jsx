// ConnectorForms: a tiny browser global around react-jsonschema-form (RJSF).
//
// Built by ../build.sh into azure_openai_connector/playground/static/forms.bundle.js
// (IIFE, minified). The page that loads the bundle calls
//
//   const handle = window.ConnectorForms.render(element, {schema, uiSchema, formData, ...});
//
// Schemas are JSON Schema draft-07, validated with @rjsf/validator-ajv8.
import React from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import Form from "@rjsf/core";
import validator from "@rjsf/validator-ajv8";
import { version as rjsfVersion } from "@rjsf/core/package.json";

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

  function paint() {
    const props = {
      ...(opts.formProps || {}),
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
    flushSync(() => root.render(<Form {...props} />));
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
};

if (typeof window !== "undefined") window.ConnectorForms = ConnectorForms;

export default ConnectorForms;
