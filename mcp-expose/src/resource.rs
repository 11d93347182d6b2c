//! Resources: static URIs and URI templates (`test://template/{id}/data`).

use std::{collections::HashMap, fmt, sync::Arc};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{Resource as ResourceMeta, ResourceContents, ResourceTemplate},
};

use crate::{Context, content::Resource};

/// Variables matched from a URI template, by name.
pub type UriVars = HashMap<String, String>;

type ReadFn = dyn Fn(Context, String, UriVars) -> BoxFuture<'static, Result<Vec<ResourceContents>, ErrorData>>
    + Send
    + Sync;

/// A resource or resource template and the function that reads it.
#[derive(Clone)]
#[must_use = "a ResourceDef does nothing until given to `Server::resource`"]
pub struct ResourceDef {
    pub(crate) uri: String,
    pub(crate) name: String,
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) mime_type: Option<String>,
    pub(crate) template: Option<UriTemplate>,
    pub(crate) read: Arc<ReadFn>,
}

impl fmt::Debug for ResourceDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceDef")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl ResourceDef {
    /// A resource at `uri` (a template when it contains `{name}` variables), read by `read`
    /// with the request's context, the requested URI and the template's variables.
    pub fn new<F, Fut>(uri: impl Into<String>, name: impl Into<String>, read: F) -> Self
    where
        F: Fn(Context, String, UriVars) -> Fut + Send + Sync + 'static,
        Fut:
            std::future::Future<Output = Result<Vec<ResourceContents>, ErrorData>> + Send + 'static,
    {
        let uri = uri.into();
        let template = uri.contains('{').then(|| UriTemplate::parse(&uri));
        Self {
            uri,
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            template,
            read: Arc::new(move |ctx, uri, vars| Box::pin(read(ctx, uri, vars))),
        }
    }

    /// The description shown to clients.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// A human-readable title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The MIME type of the contents.
    pub fn with_mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// The URI or URI template.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether this is a URI template.
    pub fn is_template(&self) -> bool {
        self.template.is_some()
    }

    pub(crate) fn matches(&self, uri: &str) -> Option<UriVars> {
        match &self.template {
            Some(template) => template.matches(uri),
            None => (self.uri == uri).then(UriVars::new),
        }
    }

    pub(crate) fn meta(&self) -> ResourceMeta {
        let mut meta = ResourceMeta::new(self.uri.clone(), self.name.clone());
        meta.title = self.title.clone();
        meta.description = self.description.clone();
        meta.mime_type = self.mime_type.clone();
        meta
    }

    pub(crate) fn template_meta(&self) -> ResourceTemplate {
        let mut meta = ResourceTemplate::new(self.uri.clone(), self.name.clone());
        meta.title = self.title.clone();
        meta.description = self.description.clone();
        meta.mime_type = self.mime_type.clone();
        meta
    }
}

/// A level-1 RFC 6570 template: literals and `{name}` variables, each matching one or more
/// characters up to the next literal.
#[derive(Debug, Clone)]
pub(crate) struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Var(String),
}

impl UriTemplate {
    pub(crate) fn parse(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            parts.push(Part::Var(rest[open + 1..open + close].trim().to_owned()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Self { parts }
    }

    pub(crate) fn matches(&self, uri: &str) -> Option<UriVars> {
        let mut vars = UriVars::new();
        let mut rest = uri;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(literal) => rest = rest.strip_prefix(literal.as_str())?,
                Part::Var(name) => {
                    let end = match parts.peek() {
                        Some(Part::Literal(next)) => rest.find(next.as_str())?,
                        _ => rest.len(),
                    };
                    if end == 0 {
                        return None;
                    }
                    vars.insert(name.clone(), rest[..end].to_owned());
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(vars)
    }
}

/// Types a `#[resource]` function can return.
///
/// A string becomes text contents with the resource's URI and MIME type (default
/// `text/plain`); [`Resource`] and `Vec<Resource>` are passed as they are.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a resource",
    label = "return a String, a Resource, or a Vec<Resource>"
)]
pub trait IntoResourceContents {
    /// The contents for a read of `uri`.
    fn into_resource_contents(self, uri: &str, mime_type: Option<&str>) -> Vec<ResourceContents>;
}

impl IntoResourceContents for String {
    fn into_resource_contents(self, uri: &str, mime_type: Option<&str>) -> Vec<ResourceContents> {
        vec![ResourceContents::text(self, uri).with_mime_type(mime_type.unwrap_or("text/plain"))]
    }
}

impl IntoResourceContents for &str {
    fn into_resource_contents(self, uri: &str, mime_type: Option<&str>) -> Vec<ResourceContents> {
        self.to_owned().into_resource_contents(uri, mime_type)
    }
}

impl IntoResourceContents for Resource {
    fn into_resource_contents(self, _: &str, _: Option<&str>) -> Vec<ResourceContents> {
        vec![self.into_contents()]
    }
}

impl IntoResourceContents for Vec<Resource> {
    fn into_resource_contents(self, _: &str, _: Option<&str>) -> Vec<ResourceContents> {
        self.into_iter().map(Resource::into_contents).collect()
    }
}

/// Parses a template variable into the parameter's type.
#[doc(hidden)]
pub fn parse_var<T: std::str::FromStr>(vars: &UriVars, name: &str) -> Result<T, ErrorData>
where
    T::Err: fmt::Display,
{
    let raw = vars
        .get(name)
        .ok_or_else(|| ErrorData::invalid_params(format!("missing URI variable `{name}`"), None))?;
    raw.parse().map_err(|e| {
        ErrorData::invalid_params(
            format!("invalid URI variable `{name}` = {raw:?}: {e}"),
            None,
        )
    })
}

/// The JSON-RPC error for a resource function's `Err(e)`.
#[doc(hidden)]
pub fn read_error(error: &dyn fmt::Display) -> ErrorData {
    ErrorData::internal_error(error.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::UriTemplate;

    #[test]
    fn template_matches_variables_between_literals() {
        let t = UriTemplate::parse("test://template/{id}/data");
        assert_eq!(t.matches("test://template/123/data").unwrap()["id"], "123");
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://template/123/other").is_none());
        let t = UriTemplate::parse("file:///{path}");
        assert_eq!(t.matches("file:///a/b.txt").unwrap()["path"], "a/b.txt");
    }
}
