//! The generated code: an arguments struct, the definition, and its link-time registration.
//! Generated code names only `<crate>::__private::...` (default crate path `::mcp_expose`).

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::{ItemFn, Path, Type, spanned::Spanned};

use crate::{
    parse::{self, Function, Kind, Options, Param},
    validate,
};

pub(crate) fn entry(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let options = parse::options(kind, attr, &mut errors);
    let item_fn: ItemFn = match syn::parse2(item.clone()) {
        Ok(item_fn) => item_fn,
        Err(_) => {
            let message = format!("{} goes on a function (`fn` or `async fn`)", kind.attr());
            let error = syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error();
            return quote! { #error #item };
        }
    };
    let function = parse::function(item_fn, &mut errors);
    validate::function(kind, &options, &function, &mut errors);
    if let Some(error) = errors.into_iter().reduce(|mut all, e| {
        all.combine(e);
        all
    }) {
        // Keep the user's function so the rest of their crate still type-checks (and IDEs work).
        let error = error.to_compile_error();
        let item = &function.item;
        return quote! { #error #item };
    }
    let krate = options
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::mcp_expose));
    match kind {
        Kind::Tool => tool(&options, &function, &krate),
        Kind::Resource => resource(&options, &function, &krate),
        Kind::Prompt => prompt(&options, &function, &krate),
    }
}

fn description(options: &Options, function: &Function) -> Option<String> {
    options
        .description
        .as_ref()
        .map(syn::LitStr::value)
        .or_else(|| {
            let docs = function.docs.clone();
            (!docs.is_empty()).then_some(docs)
        })
}

/// `fn(...)` call arguments: the context by value or by reference, every other parameter by name.
fn call_args(function: &Function) -> Vec<TokenStream> {
    function
        .params
        .iter()
        .map(|p| match (&p.ty, p.is_context) {
            (Type::Reference(_), true) => quote!(&__ctx),
            (_, true) => quote!(::core::clone::Clone::clone(&__ctx)),
            _ => p.ident.to_token_stream(),
        })
        .collect()
}

/// The struct the arguments deserialize into; its schema is the tool's input schema.
fn args_struct(params: &[&Param], krate: &Path, with_schema: bool) -> TokenStream {
    let krate_str = krate.to_token_stream().to_string().replace(' ', "");
    let serde_path = format!("{krate_str}::__private::serde");
    let schemars_path = format!("{krate_str}::__private::schemars");
    let fields = params.iter().map(|p| {
        let (ident, ty, attrs) = (&p.ident, &p.ty, &p.field_attrs);
        let docs = p.docs.iter();
        quote_spanned! {p.span=> #(#[doc = #docs])* #(#attrs)* #ident: #ty }
    });
    let schema = with_schema.then(|| {
        quote! {
            #[derive(#krate::__private::schemars::JsonSchema)]
            #[schemars(crate = #schemars_path)]
        }
    });
    quote! {
        #[derive(#krate::__private::serde::Deserialize)]
        #schema
        #[serde(crate = #serde_path)]
        #[allow(non_camel_case_types, dead_code)]
        struct __McpArgs { #(#fields,)* }
    }
}

fn dot_await(function: &Function) -> Option<TokenStream> {
    function
        .item
        .sig
        .asyncness
        .is_some()
        .then(|| quote!(.await))
}

fn tool(options: &Options, function: &Function, krate: &Path) -> TokenStream {
    let item = &function.item;
    let ident = &item.sig.ident;
    let vis = &item.vis;
    let name = options
        .name
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_else(|| ident.to_string());
    let description = description(options, function).unwrap_or_default();
    let params: Vec<&Param> = function.params.iter().filter(|p| !p.is_context).collect();
    let args_struct = args_struct(&params, krate, true);
    let fields = params.iter().map(|p| &p.ident);
    let call_args = call_args(function);
    let dot_await = dot_await(function);
    let out = &function.output.ty;
    let out_span = out.span();
    let convert = if function.output.fallible {
        quote_spanned! {out_span=>
            match __ret {
                ::core::result::Result::Ok(__value) =>
                    (&#krate::__private::Probe::<#out>::new()).convert(__value, &__spec),
                ::core::result::Result::Err(__error) => #krate::__private::error_result(&__error),
            }
        }
    } else {
        quote_spanned! {out_span=> (&#krate::__private::Probe::<#out>::new()).convert(__ret, &__spec) }
    };
    let spec =
        quote_spanned! {out_span=> (&#krate::__private::Probe::<#out>::new()).output_spec() };
    let input_schema = if options.nullable_union {
        format_ident!("input_schema_with_null")
    } else {
        format_ident!("input_schema")
    };
    let title = options.title.as_ref().map(|t| quote!(.with_title(#t)));
    let task = options.task.as_ref().map(|task| {
        let support = match task.value().as_str() {
            "required" => format_ident!("Required"),
            _ => format_ident!("Optional"),
        };
        quote!(.with_task_support(#krate::__private::TaskSupport::#support))
    });
    let task_start = options
        .task_start
        .as_ref()
        .filter(|start| start.value() == "explicit")
        .map(|_| quote!(.with_task_start(#krate::__private::TaskStart::Explicit)));
    let annotations = (!options.hints.is_empty()).then(|| {
        let hints = options
            .hints
            .iter()
            .map(|(hint, value)| quote!(.#hint(#value)));
        quote!(.with_annotations(#krate::__private::ToolAnnotations::new() #(#hints)*))
    });
    quote! {
        #item

        #[allow(non_camel_case_types, dead_code)]
        #[doc(hidden)]
        #vis struct #ident {}

        impl #krate::__private::ToolFactory for #ident {
            fn tool_def() -> #krate::__private::ToolDef {
                #args_struct
                #[allow(unused_imports)]
                use #krate::__private::{ViaContent as _, ViaStructured as _};
                let __spec: #krate::__private::OutputSpec = #spec;
                let __schema = __spec.schema();
                #krate::__private::ToolDef::new(
                    #name,
                    #krate::__private::#input_schema::<__McpArgs>(),
                    move |__ctx: #krate::__private::Context, __args: #krate::__private::JsonObject| {
                        let __spec = ::core::clone::Clone::clone(&__spec);
                        #krate::__private::boxed(async move {
                            let __McpArgs { #(#fields,)* } =
                                match #krate::__private::parse_args::<__McpArgs>(#name, __args) {
                                    ::core::result::Result::Ok(__args) => __args,
                                    ::core::result::Result::Err(__error) => return __error,
                                };
                            let _ = &__ctx;
                            let __ret = #ident(#(#call_args),*) #dot_await;
                            #convert
                        })
                    },
                )
                .with_description(#description)
                #title
                #annotations
                #task
                #task_start
                .with_output_schema(__schema)
            }
        }

        #krate::__private::inventory::submit! {
            #krate::__private::ToolRegistration(<#ident as #krate::__private::ToolFactory>::tool_def)
        }
    }
}

fn resource(options: &Options, function: &Function, krate: &Path) -> TokenStream {
    let item = &function.item;
    let ident = &item.sig.ident;
    let def_fn = format_ident!("__mcp_expose_resource_{}", ident);
    let Some(uri) = &options.uri else {
        unreachable!("validated")
    };
    let name = options
        .name
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_else(|| ident.to_string());
    let vars = function.params.iter().filter(|p| !p.is_context).map(|p| {
        let (ident, ty) = (&p.ident, &p.ty);
        let var = ident.to_string();
        quote_spanned! {p.span=> let #ident: #ty = #krate::__private::parse_var(&__vars, #var)?; }
    });
    let call_args = call_args(function);
    let dot_await = dot_await(function);
    let mime = match &options.mime_type {
        Some(m) => quote!(::core::option::Option::Some(#m)),
        None => quote!(::core::option::Option::None),
    };
    let out_span = function.output.ty.span();
    let into = quote_spanned! {out_span=> #krate::__private::IntoResourceContents::into_resource_contents };
    let contents = if function.output.fallible {
        quote! {
            match __ret {
                ::core::result::Result::Ok(__value) => #into(__value, &__uri, #mime),
                ::core::result::Result::Err(__error) =>
                    return ::core::result::Result::Err(#krate::__private::read_error(&__error)),
            }
        }
    } else {
        quote!(#into(__ret, &__uri, #mime))
    };
    let description = description(options, function).map(|d| quote!(.with_description(#d)));
    let title = options.title.as_ref().map(|t| quote!(.with_title(#t)));
    let mime_type = options
        .mime_type
        .as_ref()
        .map(|m| quote!(.with_mime_type(#m)));
    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #def_fn() -> #krate::__private::ResourceDef {
            #krate::__private::ResourceDef::new(
                #uri,
                #name,
                |__ctx: #krate::__private::Context, __uri: ::std::string::String, __vars: #krate::__private::UriVars| {
                    #krate::__private::boxed(async move {
                        #(#vars)*
                        let _ = (&__ctx, &__vars);
                        let __ret = #ident(#(#call_args),*) #dot_await;
                        ::core::result::Result::Ok(#contents)
                    })
                },
            )
            #description
            #title
            #mime_type
        }

        #krate::__private::inventory::submit! { #krate::__private::ResourceRegistration(#def_fn) }
    }
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

fn prompt(options: &Options, function: &Function, krate: &Path) -> TokenStream {
    let item = &function.item;
    let ident = &item.sig.ident;
    let def_fn = format_ident!("__mcp_expose_prompt_{}", ident);
    let name = options
        .name
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_else(|| ident.to_string());
    let params: Vec<&Param> = function.params.iter().filter(|p| !p.is_context).collect();
    let args_struct = args_struct(&params, krate, false);
    let fields = params.iter().map(|p| &p.ident);
    let arguments = params.iter().map(|p| {
        let arg = p.ident.to_string();
        let doc = parse::join_docs(&p.docs);
        let required = !is_option(&p.ty);
        quote!(#krate::__private::argument(#arg, #doc, #required))
    });
    let call_args = call_args(function);
    let dot_await = dot_await(function);
    let out_span = function.output.ty.span();
    let into =
        quote_spanned! {out_span=> #krate::__private::IntoPromptMessages::into_prompt_messages };
    let messages = if function.output.fallible {
        quote! {
            match __ret {
                ::core::result::Result::Ok(__value) => #into(__value),
                ::core::result::Result::Err(__error) =>
                    return ::core::result::Result::Err(#krate::__private::read_error(&__error)),
            }
        }
    } else {
        quote!(#into(__ret))
    };
    let description = description(options, function).map(|d| quote!(.with_description(#d)));
    let title = options.title.as_ref().map(|t| quote!(.with_title(#t)));
    let complete = options.complete.as_ref().map(|path| {
        quote_spanned! {path.span()=> .with_completions(|__argument: &str, __value: &str| #path(__argument, __value)) }
    });
    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #def_fn() -> #krate::__private::PromptDef {
            #args_struct
            #krate::__private::PromptDef::new(
                #name,
                ::std::vec![#(#arguments),*],
                |__ctx: #krate::__private::Context, __args: #krate::__private::JsonObject| {
                    #krate::__private::boxed(async move {
                        let __McpArgs { #(#fields,)* } =
                            #krate::__private::parse_prompt_args::<__McpArgs>(#name, __args)?;
                        let _ = &__ctx;
                        let __ret = #ident(#(#call_args),*) #dot_await;
                        ::core::result::Result::Ok(#messages)
                    })
                },
            )
            #description
            #title
            #complete
        }

        #krate::__private::inventory::submit! { #krate::__private::PromptRegistration(#def_fn) }
    }
}
