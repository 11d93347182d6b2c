//! Attribute arguments and the function signature -> a model of the item.

use proc_macro2::{Span, TokenStream};
use syn::{
    Attribute, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, LitStr, Meta, Pat, Path, ReturnType,
    Token, Type, parse::Parser, punctuated::Punctuated, spanned::Spanned,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Tool => "#[tool]",
            Kind::Resource => "#[resource]",
            Kind::Prompt => "#[prompt]",
        }
    }
}

/// Options given in the attribute.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<LitStr>,
    pub(crate) title: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) uri: Option<LitStr>,
    pub(crate) mime_type: Option<LitStr>,
    pub(crate) krate: Option<Path>,
    pub(crate) complete: Option<Path>,
    pub(crate) hints: Vec<(Ident, bool)>,
    /// `Option` parameters as `T` or `null` unions in the input schema.
    pub(crate) nullable_union: bool,
    /// `task = "optional" | "required"`: the tool's calls may (must) run as tasks.
    pub(crate) task: Option<LitStr>,
    /// `task_start = "explicit"`: a call becomes a task when the tool says so.
    pub(crate) task_start: Option<LitStr>,
}

pub(crate) const HINTS: [&str; 4] = ["read_only", "destructive", "idempotent", "open_world"];

fn allowed(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Tool => &[
            "name",
            "title",
            "description",
            "crate",
            "read_only",
            "destructive",
            "idempotent",
            "open_world",
            "nullable_union",
            "task",
            "task_start",
        ],
        Kind::Resource => &["uri", "name", "title", "description", "mime_type", "crate"],
        Kind::Prompt => &["name", "title", "description", "complete", "crate"],
    }
}

pub(crate) fn options(kind: Kind, attr: TokenStream, errors: &mut Vec<syn::Error>) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(e);
            return options;
        }
    };
    for meta in metas {
        let path = meta.path();
        let Some(key) = path.get_ident().map(ToString::to_string) else {
            errors.push(syn::Error::new_spanned(
                path,
                format!("unknown {} option", kind.attr()),
            ));
            continue;
        };
        if !allowed(kind).contains(&key.as_str()) {
            let expected = allowed(kind).join(", ");
            errors.push(syn::Error::new_spanned(
                path,
                format!(
                    "unknown {} option `{key}`; expected one of: {expected}",
                    kind.attr()
                ),
            ));
            continue;
        }
        if key == "nullable_union" {
            if let Some(value) = flag(&meta, &key, errors) {
                options.nullable_union = value;
            }
            continue;
        }
        if HINTS.contains(&key.as_str()) {
            if let (Some(value), Some(ident)) = (flag(&meta, &key, errors), path.get_ident()) {
                options.hints.push((ident.clone(), value));
            }
            continue;
        }
        let Meta::NameValue(nv) = &meta else {
            errors.push(syn::Error::new_spanned(
                &meta,
                format!("expected `{key} = ...`"),
            ));
            continue;
        };
        if key == "complete" {
            match &nv.value {
                Expr::Path(p) => options.complete = Some(p.path.clone()),
                other => errors.push(syn::Error::new_spanned(
                    other,
                    "`complete` takes a function path",
                )),
            }
            continue;
        }
        let Expr::Lit(ExprLit {
            lit: Lit::Str(value),
            ..
        }) = &nv.value
        else {
            errors.push(syn::Error::new_spanned(
                &nv.value,
                format!("`{key}` takes a string literal"),
            ));
            continue;
        };
        let value = value.clone();
        match key.as_str() {
            "name" => options.name = Some(value),
            "title" => options.title = Some(value),
            "description" => options.description = Some(value),
            "uri" => options.uri = Some(value),
            "mime_type" => options.mime_type = Some(value),
            "task" if matches!(value.value().as_str(), "optional" | "required") => {
                options.task = Some(value);
            }
            "task" => errors.push(syn::Error::new_spanned(
                &value,
                "`task` is \"optional\" (a task when the client supports tasks) or \"required\"",
            )),
            "task_start" if matches!(value.value().as_str(), "at_once" | "explicit") => {
                options.task_start = Some(value);
            }
            "task_start" => errors.push(syn::Error::new_spanned(
                &value,
                "`task_start` is \"at_once\" (the default) or \"explicit\" (when the tool calls `Context::start_task`)",
            )),
            "crate" => match value.parse::<Path>() {
                Ok(path) => options.krate = Some(path),
                Err(e) => errors.push(e),
            },
            _ => unreachable!("checked against the allowed list"),
        }
    }
    options
}

/// A flag option's value: `key` alone or `key = true|false`.
fn flag(meta: &Meta, key: &str, errors: &mut Vec<syn::Error>) -> Option<bool> {
    match meta {
        Meta::Path(_) => Some(true),
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(ExprLit {
                lit: Lit::Bool(b), ..
            }) => Some(b.value),
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    format!("`{key}` takes `true` or `false`"),
                ));
                None
            }
        },
        Meta::List(list) => {
            errors.push(syn::Error::new_spanned(
                list,
                format!("write `{key}` or `{key} = true`"),
            ));
            None
        }
    }
}

/// `#[header("Name")]` on a parameter: the argument is mirrored in the HTTP header
/// `Mcp-Param-Name` (SEP-2243), as `x-mcp-header` in the input schema says.
fn header(attr: &Attribute) -> syn::Result<Attribute> {
    let name: LitStr = attr.parse_args().map_err(|_| {
        syn::Error::new_spanned(
            attr,
            "write `#[header(\"Name\")]`: the header is `Mcp-Param-Name`",
        )
    })?;
    let value = name.value();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if value.is_empty() || !value.chars().all(token) {
        return Err(syn::Error::new_spanned(
            &name,
            "a header name is letters, digits and `-` (an HTTP token), e.g. \"Region\"",
        ));
    }
    Ok(syn::parse_quote!(#[schemars(extend("x-mcp-header" = #name))]))
}

/// One function parameter.
pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) docs: Vec<String>,
    /// `#[serde(..)]` / `#[schemars(..)]` attributes, moved to the arguments struct.
    pub(crate) field_attrs: Vec<Attribute>,
    pub(crate) is_context: bool,
    pub(crate) span: Span,
}

/// The return type, split into the success type and whether it is a `Result`.
pub(crate) struct Output {
    pub(crate) ty: Type,
    pub(crate) fallible: bool,
}

pub(crate) struct Function {
    pub(crate) item: ItemFn,
    pub(crate) docs: String,
    pub(crate) params: Vec<Param>,
    pub(crate) output: Output,
}

pub(crate) fn doc_lines(attrs: &[Attribute]) -> Vec<String> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Joins doc lines into one description: trimmed, paragraphs kept.
pub(crate) fn join_docs(lines: &[String]) -> String {
    let mut text = String::new();
    for line in lines {
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.trim().is_empty() {
            if !text.ends_with("\n\n") && !text.is_empty() {
                text.push_str("\n\n");
            }
        } else {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(line.trim_end());
        }
    }
    text.trim().to_owned()
}

fn is_context(ty: &Type) -> bool {
    let ty = match ty {
        Type::Reference(r) => &*r.elem,
        other => other,
    };
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Context"))
}

/// `Result<T, E>` (or any path whose last segment ends in `Result`) -> (T, true).
fn output(ret: &ReturnType) -> Output {
    let ty = match ret {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Type::Path(p) = &ty
        && let Some(last) = p.path.segments.last()
        && last.ident.to_string().ends_with("Result")
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(ok)) = args.args.first()
    {
        return Output {
            ty: ok.clone(),
            fallible: true,
        };
    }
    Output {
        ty,
        fallible: false,
    }
}

pub(crate) fn function(mut item: ItemFn, errors: &mut Vec<syn::Error>) -> Function {
    let docs = join_docs(&doc_lines(&item.attrs));
    let mut params = Vec::new();
    for input in &mut item.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "methods are not supported: put the attribute on a free function",
            )),
            FnArg::Typed(typed) => {
                let docs = doc_lines(&typed.attrs);
                let (mut field_attrs, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut typed.attrs)
                    .into_iter()
                    .filter(|a| !a.path().is_ident("doc"))
                    .partition(|a| {
                        a.path().is_ident("serde")
                            || a.path().is_ident("schemars")
                            || a.path().is_ident("header")
                    });
                for attr in &mut field_attrs {
                    if attr.path().is_ident("header") {
                        match header(attr) {
                            Ok(extended) => *attr = extended,
                            Err(e) => errors.push(e),
                        }
                    }
                }
                typed.attrs = kept;
                let ident = match &*typed.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                    other => {
                        errors.push(syn::Error::new_spanned(
                            other,
                            "parameters must be plain names, such as `seq: String`",
                        ));
                        continue;
                    }
                };
                params.push(Param {
                    is_context: is_context(&typed.ty),
                    span: typed.span(),
                    ident,
                    ty: (*typed.ty).clone(),
                    docs,
                    field_attrs,
                });
            }
        }
    }
    let output = output(&item.sig.output);
    Function {
        item,
        docs,
        params,
        output,
    }
}
