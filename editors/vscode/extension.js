// Starts `kiln lsp` for .model files. Everything the editor shows beyond highlighting
// (diagnostics, hover, inlay hints, completion, definitions, symbols, formatting) comes from
// the server; this file only launches it.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("kiln").get("server.path") || "kiln";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "kiln",
    "Kiln language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "kiln" }, { scheme: "untitled", language: "kiln" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
