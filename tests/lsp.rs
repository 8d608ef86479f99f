//! `kiln lsp` driven over stdio by a client that speaks JSON-RPC as an editor does: diagnostics
//! on open and after a fix, hover, completion, go to definition, references, symbols,
//! formatting, inlay hints, and no panic (or error answer) on any `.model` in the repository or
//! pieces of them.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for a response.
    pending: Vec<Value>,
}

const TIMEOUT: Duration = Duration::from_secs(20);

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                reader.read_exact(&mut body).unwrap();
                if sender.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            next_id: 0,
            pending: Vec::new(),
        };
        let init = client.request("initialize", json!({ "capabilities": {} }));
        assert_eq!(init["capabilities"]["hoverProvider"], json!(true), "{init}");
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The whole response to a request (its `result` or `error`).
    fn response(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self
                .messages
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no answer to {method} {params}"));
            if message["id"] == json!(id) {
                return message;
            }
            self.pending.push(message);
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.response(method, params.clone());
        assert!(
            response.get("error").is_none(),
            "{method} {params}: {response}"
        );
        response["result"].clone()
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let is_ours = |m: &Value| {
            m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri
        };
        if let Some(i) = self.pending.iter().position(is_ours) {
            let m = self.pending.remove(i);
            return m["params"]["diagnostics"].as_array().unwrap().clone();
        }
        loop {
            let m = self.messages.recv_timeout(TIMEOUT).expect("diagnostics");
            if is_ours(&m) {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "kiln", "version": 1, "text": text } }),
        );
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": version },
                "contentChanges": [{ "text": text }],
            }),
        );
    }

    fn at(&mut self, method: &str, uri: &str, (line, character): (usize, usize)) -> Value {
        let mut params = json!({
            "textDocument": { "uri": uri },
            "position": { "line": line, "character": character },
        });
        if method == "textDocument/references" {
            params["context"] = json!({ "includeDeclaration": true });
        }
        self.request(method, params)
    }

    /// Shuts the server down as an editor does, and checks that it exits cleanly.
    fn finish(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "kiln lsp exited with {status}");
    }
}

/// The zero-based line and UTF-16 column of the first `needle` in `text`, plus `skip` columns.
fn position(text: &str, needle: &str, skip: usize) -> (usize, usize) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("{needle:?}"));
    let line = text[..offset].matches('\n').count();
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..offset].encode_utf16().count() + skip)
}

const BROKEN: &str = "\
data digits = csv(\"data/digits.csv\", label: \"digit\", scale: 16)

model net(x: f32[B, 64]) -> f32[B, 10] {
    dense(32, relu)
    dense(12, softmax)
}

fit net on digits {
    loss sparse_categorical_crossentropy
}
";

#[test]
fn diagnostics_arrive_at_the_right_range_and_go_when_fixed() {
    let mut client = Client::start();
    let uri = "file:///work/net.model";
    client.open(uri, BROKEN);
    let diagnostics = client.diagnostics(uri);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    let d = &diagnostics[0];
    // The range is the primary label's, as `kiln check` reports it.
    let expected = kiln::driver::check_source(BROKEN).err().unwrap();
    let label = expected[0].labels.iter().find(|l| l.primary).unwrap();
    let (line, character) = position(BROKEN, &BROKEN[label.span.start..label.span.end], 0);
    assert_eq!(d["code"], expected[0].code, "{d}");
    assert_eq!(d["severity"], 1, "{d}");
    assert_eq!(d["source"], "kiln");
    assert_eq!(
        d["range"]["start"],
        json!({ "line": line, "character": character })
    );
    assert!(d["message"].as_str().unwrap().contains("10"), "{d}");
    // Secondary labels travel as related information, in the same document.
    let related = d["relatedInformation"]
        .as_array()
        .expect("related information");
    assert!(related.iter().all(|r| r["location"]["uri"] == uri), "{d}");

    client.change(uri, 2, &BROKEN.replace("dense(12", "dense(10"));
    assert_eq!(client.diagnostics(uri), Vec::<Value>::new());

    // A warning is published as a warning.
    client.change(
        uri,
        3,
        &BROKEN
            .replace("dense(12", "dense(10")
            .replace("fit net", "let unused = 3\nfit net"),
    );
    let warnings = client.diagnostics(uri);
    assert!(
        !warnings.is_empty() && warnings.iter().all(|w| w["severity"] == 2),
        "{warnings:?}"
    );
    client.finish();
}

#[test]
fn hover_completion_definition_and_the_rest() {
    let mut client = Client::start();
    let cnn_uri = "file:///work/mnist_cnn.model";
    let cnn = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/mnist_cnn.model"),
    )
    .unwrap();
    client.open(cnn_uri, &cnn);
    assert_eq!(client.diagnostics(cnn_uri), Vec::<Value>::new());

    // Hover on a layer: its output shape and parameters.
    let hover = client.at(
        "textDocument/hover",
        cnn_uri,
        position(&cnn, "conv2d(64", 2),
    );
    let text = hover["contents"]["value"].as_str().unwrap();
    assert!(text.contains("f32[B, 11, 11, 64]"), "{text}");
    assert!(text.contains("18,496 parameters"), "{text}");

    // Inlay hints: one per model line.
    let hints = client.request(
        "textDocument/inlayHint",
        json!({
            "textDocument": { "uri": cnn_uri },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 99, "character": 0 } },
        }),
    );
    let labels: Vec<&str> = hints
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 7, "{labels:?}");
    assert_eq!(labels[0], "f32[B, 26, 26, 32]  (320 params)");
    assert_eq!(
        hints[0]["position"]["line"],
        position(&cnn, "conv2d(32", 0).0
    );

    // Completion after `dense(64, `: the activations.
    let typing = "model m(x: f32[B, 4]) -> f32[B, 2] {\n    dense(64, \n}\n";
    let uri = "file:///work/typing.model";
    client.open(uri, typing);
    let completions = client.at("textDocument/completion", uri, (1, 14));
    let labels: Vec<&str> = completions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    for activation in ["relu", "sigmoid", "softmax", "tanh", "gelu"] {
        assert!(labels.contains(&activation), "{activation}: {labels:?}");
    }

    // Go to a layer's definition, and its references.
    let residual_uri = "file:///work/residual.model";
    let residual = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/digits_residual.model"),
    )
    .unwrap();
    client.open(residual_uri, &residual);
    let used = position(&residual, "residual(hidden)", 3);
    let definition = client.at("textDocument/definition", residual_uri, used);
    assert_eq!(definition["uri"], residual_uri);
    assert_eq!(
        definition["range"]["start"],
        json!({ "line": position(&residual, "layer residual", 6).0, "character": 6 })
    );
    let references = client.at("textDocument/references", residual_uri, used);
    assert_eq!(references.as_array().unwrap().len(), 2, "{references}");

    // Symbols and formatting.
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": residual_uri } }),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "digits",
            "hidden",
            "residual",
            "swish",
            "net",
            "fit net on digits"
        ]
    );
    let messy_uri = "file:///work/messy.model";
    client.open(messy_uri, "fit m on d {\nloss mse\n  epochs 2\n}\n");
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": messy_uri }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    assert_eq!(
        edits[0]["newText"],
        "fit m on d {\n    loss   mse\n    epochs 2\n}\n"
    );
    let edits = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": residual_uri }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    assert_eq!(edits, json!([]));

    // An unknown method is an error answer, not a crash.
    let unknown = client.response("textDocument/rename", json!({}));
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    client.finish();
}

/// Every `.model` in the repository, whole, cut short, and garbled, opened and queried.
#[test]
fn never_panics_on_any_program_or_piece_of_one() {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name != "target" && !name.starts_with('.') {
                walk(&path, out);
            } else if name.ends_with(".model") {
                out.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut sources = Vec::new();
    walk(Path::new(env!("CARGO_MANIFEST_DIR")), &mut sources);
    assert!(sources.len() > 100);
    let mut inputs = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        inputs.push(source.clone());
        let chars: Vec<char> = source.chars().collect();
        // Cut at a few places, and with a few characters dropped from the middle.
        for k in 1..3 {
            let at = chars.len() * k / 3;
            if i % 2 == 0 {
                inputs.push(chars[..at].iter().collect());
            } else {
                let end = (at + 7).min(chars.len());
                inputs.push(chars[..at].iter().chain(&chars[end..]).collect());
            }
        }
    }
    inputs.extend(
        [
            "",
            "(((",
            "fit",
            "model m(",
            "\u{feff}é𝄞 \"",
            "data x = dense(64, ",
        ]
        .map(String::from),
    );
    let mut client = Client::start();
    for (n, text) in inputs.iter().enumerate() {
        let uri = format!("file:///fuzz/{n}.model");
        client.open(&uri, text);
        client.diagnostics(&uri);
        let lines = text.lines().count().max(1);
        for (line, character) in [(lines / 2, 6), (lines - 1, 200), (lines + 3, 0)] {
            client.at("textDocument/hover", &uri, (line, character));
            client.at("textDocument/completion", &uri, (line, character));
            client.at("textDocument/definition", &uri, (line, character));
        }
        client.request(
            "textDocument/inlayHint",
            json!({
                "textDocument": { "uri": uri },
                "range": { "start": { "line": 0, "character": 0 }, "end": { "line": lines, "character": 0 } },
            }),
        );
        client.request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri } }),
        );
        client.request(
            "textDocument/formatting",
            json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 4, "insertSpaces": true } }),
        );
        client.notify(
            "textDocument/didClose",
            json!({ "textDocument": { "uri": uri } }),
        );
    }
    client.finish();
}
