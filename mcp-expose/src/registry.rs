//! The set of tools, resources and prompts a server offers, and the link-time collection of
//! everything `#[tool]`, `#[resource]` and `#[prompt]` define.

use std::collections::HashMap;

use crate::{PromptDef, ResourceDef, ToolDef};

/// A `#[tool]` function, registered at link time.
#[doc(hidden)]
#[derive(Debug)]
pub struct ToolRegistration(pub fn() -> ToolDef);
/// A `#[resource]` function, registered at link time.
#[doc(hidden)]
#[derive(Debug)]
pub struct ResourceRegistration(pub fn() -> ResourceDef);
/// A `#[prompt]` function, registered at link time.
#[doc(hidden)]
#[derive(Debug)]
pub struct PromptRegistration(pub fn() -> PromptDef);

inventory::collect!(ToolRegistration);
inventory::collect!(ResourceRegistration);
inventory::collect!(PromptRegistration);

/// Implemented by the item `#[tool]` generates beside the function, for explicit registration
/// with [`tools!`](crate::tools).
#[doc(hidden)]
pub trait ToolFactory {
    fn tool_def() -> ToolDef;
}

/// Tools, resources and prompts, each unique by name (tools, prompts) or URI (resources).
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    pub(crate) tools: Vec<ToolDef>,
    tool_index: HashMap<String, usize>,
    pub(crate) resources: Vec<ResourceDef>,
    pub(crate) prompts: Vec<PromptDef>,
}

impl Registry {
    /// Everything the macros registered in this binary, sorted by name for a stable listing.
    pub(crate) fn collected() -> Self {
        let mut registry = Self::default();
        let mut tools: Vec<_> = inventory::iter::<ToolRegistration>()
            .map(|r| (r.0)())
            .collect();
        tools.sort_by(|a, b| a.name().cmp(b.name()));
        for tool in tools {
            registry.add_tool(tool);
        }
        let mut resources: Vec<_> = inventory::iter::<ResourceRegistration>()
            .map(|r| (r.0)())
            .collect();
        resources.sort_by(|a, b| a.uri.cmp(&b.uri));
        for resource in resources {
            registry.add_resource(resource);
        }
        let mut prompts: Vec<_> = inventory::iter::<PromptRegistration>()
            .map(|r| (r.0)())
            .collect();
        prompts.sort_by(|a, b| a.name().cmp(b.name()));
        for prompt in prompts {
            registry.add_prompt(prompt);
        }
        registry
    }

    /// Adds a tool, replacing one of the same name.
    pub(crate) fn add_tool(&mut self, tool: ToolDef) {
        match self.tool_index.get(tool.name()) {
            Some(&i) => self.tools[i] = tool,
            None => {
                self.tool_index
                    .insert(tool.name().to_owned(), self.tools.len());
                self.tools.push(tool);
            }
        }
    }

    pub(crate) fn add_resource(&mut self, resource: ResourceDef) {
        self.resources.retain(|r| r.uri != resource.uri);
        self.resources.push(resource);
    }

    pub(crate) fn add_prompt(&mut self, prompt: PromptDef) {
        self.prompts.retain(|p| p.name() != prompt.name());
        self.prompts.push(prompt);
    }

    pub(crate) fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    pub(crate) fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|p| p.name() == name)
    }

    /// The resource serving `uri`: an exact static URI first, then the first matching template.
    pub(crate) fn resource(&self, uri: &str) -> Option<(&ResourceDef, crate::resource::UriVars)> {
        self.resources
            .iter()
            .filter(|r| !r.is_template())
            .chain(self.resources.iter().filter(|r| r.is_template()))
            .find_map(|r| r.matches(uri).map(|vars| (r, vars)))
    }
}
