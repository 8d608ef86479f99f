//! `kiln lsp`: the language server over stdio (`lsp-server`, the transport rust-analyzer uses,
//! with `lsp-types`). This file speaks the protocol: it keeps each open buffer's `ide::Analysis`
//! (rebuilt on every change: full-text sync), publishes its diagnostics, and converts the
//! analysis's byte spans and data to the protocol's positions and types. What to answer is
//! `kiln::ide`'s business.

use std::collections::HashMap;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument,
    Notification as NotificationTrait, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, InlayHintRequest,
    References, Request as RequestTrait,
};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionResponse,
    DiagnosticRelatedInformation, DiagnosticSeverity, DocumentSymbol, DocumentSymbolResponse,
    Documentation, GotoDefinitionResponse, Hover, HoverContents, HoverProviderCapability,
    InlayHint, InlayHintLabel, Location, MarkupContent, MarkupKind, NumberOrString, OneOf,
    PublishDiagnosticsParams, Range, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Uri,
};

use kiln::diag::{Severity, Span};
use kiln::ide::{self, Analysis, CompletionKind, LineIndex, SymbolKind};

pub fn lsp() -> Result<(), String> {
    let (connection, io_threads) = Connection::stdio();
    let served = serve(&connection);
    // The writer thread ends once the connection (its sender) is dropped.
    drop(connection);
    let joined = io_threads
        .join()
        .map_err(|e| format!("error: kiln lsp: {e}"));
    served.and(joined)
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["(".into(), ",".into(), " ".into(), ":".into()]),
            ..CompletionOptions::default()
        }),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

fn serve(connection: &Connection) -> Result<(), String> {
    let capabilities =
        serde_json::to_value(capabilities()).map_err(|e| format!("error: kiln lsp: {e}"))?;
    connection
        .initialize(capabilities)
        .map_err(|e| format!("error: kiln lsp: {e}"))?;
    let mut server = Server {
        connection,
        documents: HashMap::new(),
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(|e| format!("error: kiln lsp: {e}"))?
                {
                    return Ok(());
                }
                let response = server.request(request);
                server.send(Message::Response(response));
            }
            Message::Notification(notification) => server.notification(notification),
            Message::Response(_) => {}
        }
    }
    Ok(())
}

struct Server<'a> {
    connection: &'a Connection,
    documents: HashMap<Uri, Analysis>,
}

/// A request's parameters, or the error response for ones that do not read as its kind.
fn params<R: RequestTrait>(request: &Request) -> Result<R::Params, Box<Response>> {
    serde_json::from_value(request.params.clone()).map_err(|e| {
        Box::new(Response::new_err(
            request.id.clone(),
            ErrorCode::InvalidParams as i32,
            format!("invalid parameters for {}: {e}", R::METHOD),
        ))
    })
}

impl Server<'_> {
    fn send(&self, message: Message) {
        // The client has gone: the loop ends when its receiver does.
        let _ = self.connection.sender.send(message);
    }

    fn request(&mut self, request: Request) -> Response {
        match self.answer(&request) {
            Ok(response) => response,
            Err(response) => *response,
        }
    }

    fn document(&self, uri: &Uri) -> Option<&Analysis> {
        self.documents.get(uri)
    }

    fn answer(&mut self, request: &Request) -> Result<Response, Box<Response>> {
        let id = request.id.clone();
        let null = serde_json::Value::Null;
        Ok(match request.method.as_str() {
            HoverRequest::METHOD => {
                let p = params::<HoverRequest>(request)?;
                let doc = &p.text_document_position_params;
                let Some(analysis) = self.document(&doc.text_document.uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let offset = analysis.lines().offset(position_in(doc.position));
                match analysis.hover(offset) {
                    Some(hover) => Response::new_ok(
                        id,
                        Hover {
                            contents: HoverContents::Markup(MarkupContent {
                                kind: MarkupKind::Markdown,
                                value: hover.markdown,
                            }),
                            range: Some(range(analysis.lines(), hover.span)),
                        },
                    ),
                    None => Response::new_ok(id, null),
                }
            }
            Completion::METHOD => {
                let p = params::<Completion>(request)?;
                let doc = &p.text_document_position;
                let Some(analysis) = self.document(&doc.text_document.uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let offset = analysis.lines().offset(position_in(doc.position));
                let items: Vec<CompletionItem> = analysis
                    .completions(offset)
                    .into_iter()
                    .map(completion_item)
                    .collect();
                Response::new_ok(id, CompletionResponse::Array(items))
            }
            GotoDefinition::METHOD => {
                let p = params::<GotoDefinition>(request)?;
                let doc = &p.text_document_position_params;
                let uri = &doc.text_document.uri;
                let Some(analysis) = self.document(uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let offset = analysis.lines().offset(position_in(doc.position));
                match analysis.definition(offset) {
                    Some(span) => Response::new_ok(
                        id,
                        GotoDefinitionResponse::Scalar(Location::new(
                            uri.clone(),
                            range(analysis.lines(), span),
                        )),
                    ),
                    None => Response::new_ok(id, null),
                }
            }
            References::METHOD => {
                let p = params::<References>(request)?;
                let doc = &p.text_document_position;
                let uri = &doc.text_document.uri;
                let Some(analysis) = self.document(uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let offset = analysis.lines().offset(position_in(doc.position));
                let locations: Vec<Location> = analysis
                    .references(offset, p.context.include_declaration)
                    .into_iter()
                    .map(|span| Location::new(uri.clone(), range(analysis.lines(), span)))
                    .collect();
                Response::new_ok(id, locations)
            }
            DocumentSymbolRequest::METHOD => {
                let p = params::<DocumentSymbolRequest>(request)?;
                let Some(analysis) = self.document(&p.text_document.uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let symbols = analysis
                    .symbols()
                    .into_iter()
                    .map(|s| document_symbol(analysis.lines(), s))
                    .collect();
                Response::new_ok(id, DocumentSymbolResponse::Nested(symbols))
            }
            Formatting::METHOD => {
                let p = params::<Formatting>(request)?;
                let Some(analysis) = self.document(&p.text_document.uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let edits: Vec<TextEdit> = analysis
                    .formatted()
                    .map(|text| {
                        let whole = Span::new(0, analysis.source().len());
                        vec![TextEdit::new(range(analysis.lines(), whole), text)]
                    })
                    .unwrap_or_default();
                Response::new_ok(id, edits)
            }
            InlayHintRequest::METHOD => {
                let p = params::<InlayHintRequest>(request)?;
                let Some(analysis) = self.document(&p.text_document.uri) else {
                    return Ok(Response::new_ok(id, null));
                };
                let lines = analysis.lines();
                let start = lines.offset(position_in(p.range.start));
                let end = lines.offset(position_in(p.range.end));
                let hints: Vec<InlayHint> = analysis
                    .inlay_hints()
                    .into_iter()
                    .filter(|h| start <= h.offset && h.offset <= end)
                    .map(|h| InlayHint {
                        position: position_out(lines.position(h.offset)),
                        label: InlayHintLabel::String(h.label),
                        kind: Some(lsp_types::InlayHintKind::TYPE),
                        text_edits: None,
                        tooltip: None,
                        padding_left: Some(true),
                        padding_right: None,
                        data: None,
                    })
                    .collect();
                Response::new_ok(id, hints)
            }
            method => Response::new_err(
                id,
                ErrorCode::MethodNotFound as i32,
                format!("kiln lsp does not answer {method}"),
            ),
        })
    }

    fn notification(&mut self, notification: Notification) {
        match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<
                    <DidOpenTextDocument as NotificationTrait>::Params,
                >(notification.params)
                {
                    let doc = p.text_document;
                    self.update(doc.uri, &doc.text, Some(doc.version));
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<
                    <DidChangeTextDocument as NotificationTrait>::Params,
                >(notification.params)
                    // Full sync: the last change holds the whole text.
                    && let Some(change) = p.content_changes.into_iter().last()
                {
                    let doc = p.text_document;
                    self.update(doc.uri, &change.text, Some(doc.version));
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<
                    <DidCloseTextDocument as NotificationTrait>::Params,
                >(notification.params)
                {
                    let uri = p.text_document.uri;
                    self.documents.remove(&uri);
                    self.publish(uri, Vec::new(), None);
                }
            }
            _ => {}
        }
    }

    fn update(&mut self, uri: Uri, text: &str, version: Option<i32>) {
        let analysis = Analysis::new(text);
        let diagnostics = analysis
            .diagnostics()
            .iter()
            .map(|d| diagnostic(&uri, analysis.lines(), d))
            .collect();
        self.documents.insert(uri.clone(), analysis);
        self.publish(uri, diagnostics, version);
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) {
        let params = PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        };
        self.send(Message::Notification(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            params,
        )));
    }
}

fn position_in(p: lsp_types::Position) -> ide::Position {
    ide::Position {
        line: p.line,
        character: p.character,
    }
}

fn position_out(p: ide::Position) -> lsp_types::Position {
    lsp_types::Position::new(p.line, p.character)
}

fn range(lines: &LineIndex, span: Span) -> Range {
    let (start, end) = lines.range(span);
    Range::new(position_out(start), position_out(end))
}

/// A diagnostic as data → the protocol's: the primary label's range, its message under the
/// diagnostic's, the secondary labels as related information, notes and help after.
fn diagnostic(uri: &Uri, lines: &LineIndex, d: &kiln::diag::Diagnostic) -> lsp_types::Diagnostic {
    let primary = d.labels.iter().find(|l| l.primary).or(d.labels.first());
    let mut message = d.message.clone();
    if let Some(label) = primary.filter(|l| !l.message.is_empty()) {
        message.push_str(&format!("\n{}", label.message));
    }
    for note in &d.notes {
        message.push_str(&format!("\nnote: {note}"));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| !l.primary)
        .map(|l| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), range(lines, l.span)),
            message: l.message.clone(),
        })
        .collect();
    lsp_types::Diagnostic {
        range: range(lines, primary.map_or(Span::default(), |l| l.span)),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.to_string())),
        source: Some("kiln".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}

fn completion_item(c: ide::Completion) -> CompletionItem {
    let kind = match c.kind {
        CompletionKind::Layer => CompletionItemKind::CLASS,
        CompletionKind::Function => CompletionItemKind::FUNCTION,
        CompletionKind::Initializer => CompletionItemKind::CONSTANT,
        CompletionKind::Setting => CompletionItemKind::PROPERTY,
        CompletionKind::Builtin => CompletionItemKind::VALUE,
        CompletionKind::Argument => CompletionItemKind::FIELD,
        CompletionKind::Keyword => CompletionItemKind::KEYWORD,
        CompletionKind::Name => CompletionItemKind::VARIABLE,
        CompletionKind::Value => CompletionItemKind::ENUM_MEMBER,
    };
    CompletionItem {
        label: c.label,
        kind: Some(kind),
        detail: (!c.detail.is_empty()).then_some(c.detail),
        documentation: c.documentation.map(|value| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value,
            })
        }),
        insert_text: Some(c.insert),
        ..CompletionItem::default()
    }
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must still be written out.
fn document_symbol(lines: &LineIndex, s: ide::Symbol) -> DocumentSymbol {
    let kind = match s.kind {
        SymbolKind::Data => lsp_types::SymbolKind::VARIABLE,
        SymbolKind::Constant => lsp_types::SymbolKind::CONSTANT,
        SymbolKind::Model => lsp_types::SymbolKind::CLASS,
        SymbolKind::Layer => lsp_types::SymbolKind::STRUCT,
        SymbolKind::Function => lsp_types::SymbolKind::FUNCTION,
        SymbolKind::Fit | SymbolKind::Action => lsp_types::SymbolKind::EVENT,
        SymbolKind::Local => lsp_types::SymbolKind::VARIABLE,
    };
    let children: Vec<DocumentSymbol> = s
        .children
        .into_iter()
        .map(|c| document_symbol(lines, c))
        .collect();
    DocumentSymbol {
        name: s.name,
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range: range(lines, s.span),
        selection_range: range(lines, s.name_span),
        children: (!children.is_empty()).then_some(children),
    }
}
