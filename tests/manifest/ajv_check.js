// Runs Microsoft's own validation stack (ajv-draft-04 + ajv-formats, configured the way
// @microsoft/app-manifest's ManifestUtil configures them) so the Python validator can be compared
// with it. Input on stdin: {"nodeModules": dir, "schema": file, "manifests": [...],
// "regex": [[pattern, [string, ...]], ...]}. Output on stdout: {"manifests": [[json path, ...]],
// "regex": [[bool, ...]]}.
"use strict";
const fs = require("fs");
const path = require("path");

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const Ajv = require(path.join(input.nodeModules, "ajv-draft-04"));
const addFormats = require(path.join(input.nodeModules, "ajv-formats"));

const ajv = new Ajv({ allErrors: true, strictTypes: false });
addFormats(ajv, ["uri", "email", "regex"]);
const validate = ajv.compile(JSON.parse(fs.readFileSync(input.schema, "utf8")));

function jsonPath(error) {
  let out = "$";
  for (const part of error.instancePath.split("/").slice(1)) {
    const name = part.replace(/~1/g, "/").replace(/~0/g, "~");
    out += /^\d+$/.test(name) ? `[${name}]` : `.${name}`;
  }
  if (error.keyword === "required") out += `.${error.params.missingProperty}`;
  return out;
}

const manifests = input.manifests.map((manifest) => {
  validate(manifest);
  return [...new Set((validate.errors || []).map(jsonPath))].sort();
});
const regex = input.regex.map(([pattern, strings]) => {
  const compiled = new RegExp(pattern, "u");
  return strings.map((s) => compiled.test(s));
});
process.stdout.write(JSON.stringify({ manifests, regex }));
