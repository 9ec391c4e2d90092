//! The `web_map` tool: list the URLs of a site without reading the pages, so a model can pick
//! what to read with `web_extract`.

use std::{fmt::Write as _, sync::OnceLock};

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    page_tools::{Progress, ScopeArgs, scope_defaults, with_progress},
    tool::{self, ServedOut, ToolOutcome},
};
use crate::domain::search::{
    CallStats, Caller, InvalidInput, MapRequest, MapResults, SearchService,
};

/// The tool's name.
pub const NAME: &str = "web_map";

/// The arguments of `web_map`: the scope only.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WebMapArgs {
    /// Where to start and how far to go.
    #[serde(flatten)]
    pub scope: ScopeArgs,
}

/// The structured result of `web_map`.
#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WebMapOutput {
    /// Which backend mapped the site ("mock" URLs are placeholders).
    pub provider: String,
    /// Where the map started.
    pub base_url: String,
    /// The URLs found.
    pub urls: Vec<String>,
    /// How the call was served.
    #[serde(flatten)]
    pub served: ServedOut,
}

/// The tool's definition for `tools/list`.
pub fn definition() -> Tool {
    let input = tool::input_schema::<WebMapArgs>(&scope_defaults(), &[]);
    tool::web_tool::<WebMapOutput>(
        NAME,
        "Map a website",
        "Map a website: start at a URL, follow its links and return the URLs found, without \
         their content. Use it to see how a site or documentation section is laid out, then \
         read the pages you need with web_extract.",
        input,
    )
}

/// Runs `web_map`, reporting progress when `progress` is present.
pub async fn call(
    service: &SearchService,
    caller: &Caller,
    arguments: Option<JsonObject>,
    progress: Option<Progress>,
) -> ToolOutcome {
    let found = |results: &MapResults| format!("{} URLs", results.urls.len());
    tool::run(
        NAME,
        parse(arguments),
        async |request| with_progress(progress, "map", service.map(caller, request), found).await,
        "Retry with a smaller limit or max_depth.",
        |_, results, stats| success(results, stats),
    )
    .await
}

fn parse(arguments: Option<JsonObject>) -> Result<MapRequest, InvalidInput> {
    static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
    let args: WebMapArgs = tool::parse_args(arguments, &FIELDS)?;
    MapRequest::new(args.scope.into_options())
}

fn success(results: &MapResults, stats: CallStats) -> ToolOutcome {
    let output = WebMapOutput {
        provider: stats.provider.to_owned(),
        base_url: results.base_url.clone(),
        urls: results.urls.clone(),
        served: ServedOut::new(&stats, &results.usage),
    };
    let mut text = String::new();
    if stats.provider == "mock" {
        text.push_str("Note: these are placeholder URLs from searchgate's mock provider.\n\n");
    }
    let _ = writeln!(
        text,
        "{} URLs under {}:",
        output.urls.len(),
        output.base_url
    );
    for url in &output.urls {
        let _ = writeln!(text, "- {url}");
    }
    ToolOutcome::success(&output, text, stats, &results.usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::page_tools::SCOPE_ARGUMENTS;

    #[test]
    fn the_schema_lists_exactly_the_accepted_arguments() {
        tool::assert_input_schema(&definition(), &SCOPE_ARGUMENTS, "url");
    }
}
