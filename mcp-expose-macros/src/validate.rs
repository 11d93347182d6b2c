//! What the macros refuse, each error with the span of the user's code that causes it.

use syn::{Type, spanned::Spanned};

use crate::parse::{Function, Kind, Options};

fn has_lifetime_or_ref(ty: &Type) -> bool {
    matches!(
        ty,
        Type::Reference(_) | Type::ImplTrait(_) | Type::TraitObject(_) | Type::Infer(_)
    )
}

pub(crate) fn function(
    kind: Kind,
    options: &Options,
    function: &Function,
    errors: &mut Vec<syn::Error>,
) {
    let sig = &function.item.sig;
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!(
                "{} functions cannot be generic: the schema needs concrete types",
                kind.attr()
            ),
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            format!("{} functions cannot be `unsafe`", kind.attr()),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "variadic functions are not supported",
        ));
    }
    if let Some(start) = &options.task_start {
        if options.task.is_none() {
            errors.push(syn::Error::new_spanned(
                start,
                "`task_start` needs `task = \"optional\"` or `task = \"required\"`",
            ));
        } else if start.value() == "explicit" && !function.params.iter().any(|p| p.is_context) {
            errors.push(syn::Error::new_spanned(
                start,
                "`task_start = \"explicit\"` needs a `Context` parameter, to call `ctx.start_task()`",
            ));
        }
    }
    let contexts: Vec<_> = function.params.iter().filter(|p| p.is_context).collect();
    for extra in contexts.iter().skip(1) {
        errors.push(syn::Error::new(
            extra.span,
            "only one `Context` parameter is allowed",
        ));
    }
    for param in function.params.iter().filter(|p| !p.is_context) {
        if has_lifetime_or_ref(&param.ty) {
            errors.push(syn::Error::new(
                param.ty.span(),
                "parameters must be owned types that implement `Deserialize` (for example `String`, not `&str`)",
            ));
        }
    }
    if kind == Kind::Tool && function.docs.is_empty() && options.description.is_none() {
        errors.push(syn::Error::new_spanned(
            &sig.ident,
            "a tool needs a description: add a `///` doc comment or `description = \"...\"`",
        ));
    }
    if kind == Kind::Prompt && function.docs.is_empty() && options.description.is_none() {
        errors.push(syn::Error::new_spanned(
            &sig.ident,
            "a prompt needs a description: add a `///` doc comment or `description = \"...\"`",
        ));
    }
    if kind == Kind::Resource {
        resource(options, function, errors);
    }
}

fn resource(options: &Options, function: &Function, errors: &mut Vec<syn::Error>) {
    let Some(uri) = &options.uri else {
        errors.push(syn::Error::new_spanned(
            &function.item.sig.ident,
            "a resource needs `uri = \"...\"`, for example #[resource(uri = \"test://items/{id}\")]",
        ));
        return;
    };
    let vars = template_vars(&uri.value());
    for param in function.params.iter().filter(|p| !p.is_context) {
        if !vars.iter().any(|v| param.ident == v) {
            let hint = if vars.is_empty() {
                "the URI has no `{variables}`".to_owned()
            } else {
                format!("its variables are: {}", vars.join(", "))
            };
            errors.push(syn::Error::new_spanned(
                &param.ident,
                format!(
                    "parameter `{}` is not a variable of the URI template ({hint})",
                    param.ident
                ),
            ));
        }
    }
}

/// The `{name}` variables of a URI template.
pub(crate) fn template_vars(uri: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let mut rest = uri;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        vars.push(rest[open + 1..open + close].trim().to_owned());
        rest = &rest[open + close + 1..];
    }
    vars
}
