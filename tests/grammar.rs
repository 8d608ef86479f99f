//! The TextMate grammar of `editors/vscode/` run as an editor runs it (at each position the
//! leftmost match of any rule, the first rule on a tie; the grammar has only `match` rules so
//! this is the whole of its semantics) over every program in `programs/`, checked token by token
//! against Kiln's own lexer: keywords, names being defined, built-ins, types, numbers, strings,
//! booleans and comments each get their scope. Needs no network and no Node.

use std::collections::BTreeSet;
use std::path::Path;

use kiln::syntax::token::{Token, lex};
use regex::Regex;
use serde_json::Value;

struct Rule {
    regex: Regex,
    /// The whole match's scope, and each capture group's.
    name: Option<String>,
    captures: Vec<(usize, String)>,
}

fn grammar() -> (Value, Vec<Rule>) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode/syntaxes/kiln.tmLanguage.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rules = json["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p.get("begin").is_none(), "only `match` rules: {p}");
            Rule {
                regex: Regex::new(&format!("(?m){}", p["match"].as_str().unwrap())).unwrap(),
                name: p["name"].as_str().map(String::from),
                captures: p["captures"]
                    .as_object()
                    .map(|c| {
                        c.iter()
                            .map(|(k, v)| {
                                (k.parse().unwrap(), v["name"].as_str().unwrap().to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    (json, rules)
}

/// The scope of every byte of `source`, as the grammar gives it, line by line.
fn scopes(rules: &[Rule], source: &str) -> Vec<Option<String>> {
    let mut out = vec![None; source.len()];
    let mut line_start = 0;
    for line in source.split_inclusive('\n') {
        let text = line.strip_suffix('\n').unwrap_or(line);
        let mut pos = 0;
        while pos < text.len() {
            let best = rules
                .iter()
                .filter_map(|r| r.regex.captures_at(text, pos).map(|c| (r, c)))
                .min_by_key(|(_, c)| c.get(0).unwrap().start());
            let Some((rule, caps)) = best else {
                break;
            };
            let whole = caps.get(0).unwrap();
            if let Some(name) = &rule.name {
                for slot in &mut out[line_start + whole.start()..line_start + whole.end()] {
                    *slot = Some(name.clone());
                }
            }
            for (group, name) in &rule.captures {
                if let Some(m) = caps.get(*group) {
                    for slot in &mut out[line_start + m.start()..line_start + m.end()] {
                        *slot = Some(name.clone());
                    }
                }
            }
            pos = if whole.end() > whole.start() {
                whole.end()
            } else {
                whole.start() + 1
            };
            while !text.is_char_boundary(pos) {
                pos += 1;
            }
        }
        line_start += line.len();
    }
    out
}

/// The scope each lexer token should have; `None` where any (or none) will do.
fn expected(token: &Token, previous: Option<&Token>) -> Option<&'static str> {
    Some(match token {
        Token::Model | Token::Layer | Token::Fn | Token::Data | Token::Let | Token::ParamKw => {
            "storage.type.kiln"
        }
        Token::Fit
        | Token::On
        | Token::Evaluate
        | Token::Predict
        | Token::Save
        | Token::Load
        | Token::To
        | Token::From
        | Token::Forward => "keyword.control.kiln",
        Token::True | Token::False => "constant.language.boolean.kiln",
        Token::Int(_) => "constant.numeric.integer.kiln",
        Token::Float(_) => "constant.numeric.float.kiln",
        Token::Str(_) => "string.quoted.double.kiln",
        Token::Arrow => "keyword.operator.arrow.kiln",
        Token::Eq | Token::Plus | Token::Minus | Token::Star | Token::Slash | Token::At => {
            "keyword.operator.kiln"
        }
        Token::Ident(name) => match previous {
            Some(Token::Model | Token::Layer | Token::Fn) => "entity.name.function.kiln",
            Some(Token::Data | Token::Let | Token::ParamKw) => "variable.other.definition.kiln",
            _ if name == "f32" || name == "i32" => "storage.type.tensor.kiln",
            _ if kiln::check::builtin_names().contains(&name.as_str()) => {
                "support.function.builtin.kiln"
            }
            _ => return None,
        },
        _ => return None,
    })
}

#[test]
fn the_grammar_scopes_every_token_of_the_example_programs_as_the_lexer_reads_it() {
    let (_, rules) = grammar();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "model"))
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    let mut failures = Vec::new();
    let mut checked = BTreeSet::new();
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let scoped = scopes(&rules, &source);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut previous: Option<&Token> = None;
        let lexed = lex(&source);
        let mut covered = vec![false; source.len()];
        for (start, token, end) in &lexed.tokens {
            let text = &source[*start..*end];
            covered[*start..*end].iter_mut().for_each(|c| *c = true);
            if text.is_empty() || text == "\n" || text == ";" {
                continue;
            }
            if let Some(scope) = expected(token, previous) {
                checked.insert(scope);
                let got: BTreeSet<_> = scoped[*start..*end].iter().collect();
                if got.len() != 1 || scoped[*start].as_deref() != Some(scope) {
                    let line = source[..*start].matches('\n').count() + 1;
                    failures.push(format!("{name}:{line}: `{text}` is {got:?}, not {scope}"));
                }
            }
            previous = Some(token);
        }
        // Outside tokens: comments are comments, the rest (space) unscoped.
        for (i, c) in source.char_indices() {
            if !covered[i] && c == '#' {
                let line_end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                if scoped[i..line_end]
                    .iter()
                    .any(|s| s.as_deref() != Some("comment.line.number-sign.kiln"))
                {
                    let line = source[..i].matches('\n').count() + 1;
                    failures.push(format!("{name}:{line}: comment not scoped as one"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for scope in [
        "storage.type.kiln",
        "entity.name.function.kiln",
        "keyword.control.kiln",
        "constant.numeric.integer.kiln",
        "constant.numeric.float.kiln",
        "string.quoted.double.kiln",
        "support.function.builtin.kiln",
        "storage.type.tensor.kiln",
        "constant.language.boolean.kiln",
    ] {
        assert!(checked.contains(scope), "no token of {scope} in programs/");
    }
}

/// The grammar's built-ins are the registry's, so a new layer is highlighted (or this fails).
#[test]
fn the_grammars_builtins_are_the_registrys() {
    let (json, _) = grammar();
    let rule = json["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "support.function.builtin.kiln")
        .expect("a built-ins rule");
    let pattern = rule["match"].as_str().unwrap();
    let listed: BTreeSet<&str> = pattern
        .trim_start_matches("\\b(")
        .trim_end_matches(")\\b")
        .split('|')
        .collect();
    let registry: BTreeSet<&str> = kiln::check::builtin_names().into_iter().collect();
    assert_eq!(
        listed,
        registry,
        "write the rule as: \\\\b({})\\\\b",
        kiln::check::builtin_names().join("|")
    );
}

/// The extension's manifest names files that exist and read as JSON, the language it
/// contributes is the one the grammar scopes, and its client starts `kiln lsp`.
#[test]
fn the_vscode_extension_is_complete() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode");
    let read = |name: &str| -> Value {
        let text =
            std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let manifest = read("package.json");
    let language = &manifest["contributes"]["languages"][0];
    assert_eq!(language["id"], "kiln");
    assert_eq!(language["extensions"], serde_json::json!([".model"]));
    let config = read(
        language["configuration"]
            .as_str()
            .unwrap()
            .trim_start_matches("./"),
    );
    assert_eq!(config["comments"]["lineComment"], "#");
    let grammar = &manifest["contributes"]["grammars"][0];
    let tm = read(grammar["path"].as_str().unwrap().trim_start_matches("./"));
    assert_eq!(grammar["scopeName"], tm["scopeName"]);
    assert_eq!(grammar["language"], "kiln");
    let main = manifest["main"].as_str().unwrap().trim_start_matches("./");
    let client = std::fs::read_to_string(dir.join(main)).unwrap();
    assert!(client.contains("vscode-languageclient") && client.contains("\"lsp\""));
    assert!(manifest["dependencies"]["vscode-languageclient"].is_string());
}
