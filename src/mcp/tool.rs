//! What the web tools share: parsing arguments into a typed struct with errors that name the
//! argument, the schema clean-up, the mapping of `SearchError` to a tool error a model can act
//! on, and the outcome handed back to the handler for the audit row.

use std::{str::FromStr, sync::OnceLock, time::Duration};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::domain::budget::BudgetScope;
use crate::domain::search::{
    CallCost, CallStats, Image, InvalidInput, SearchError, Served, UpstreamUsage,
};

/// `_meta` key under which error results carry their machine-readable code.
pub const ERROR_META_KEY: &str = "searchgate/error";

/// A tool result plus what the audit row needs.
pub struct ToolOutcome {
    /// What the client receives.
    pub result: CallToolResult,
    /// The machine-readable code of an error result (`None` on success).
    pub error_code: Option<&'static str>,
    /// How the backends were used, when they were.
    pub stats: Option<CallStats>,
    /// The backend's id for the call, when it sent one.
    pub upstream_request_id: Option<String>,
    /// What the call cost, when the backend said.
    pub cost: CallCost,
}

impl ToolOutcome {
    /// A successful result with structured content and a text rendering of it.
    pub fn success<T: Serialize>(
        output: &T,
        text: String,
        stats: CallStats,
        usage: &UpstreamUsage,
    ) -> Self {
        let structured = serde_json::to_value(output).expect("tool outputs serialize");
        // Clients that ignore structuredContent read the text.
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(structured);
        Self {
            result,
            error_code: None,
            cost: CallCost::of(usage, stats.cache_hit),
            stats: Some(stats),
            upstream_request_id: usage.request_id.clone(),
        }
    }

    fn error(text: String, code: &'static str, extra: Value) -> Self {
        let mut detail = json!({ "code": code });
        if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
            detail.extend(extra);
        }
        let mut meta = MetaObject::new();
        meta.0.insert(ERROR_META_KEY.to_owned(), detail);
        let result = CallToolResult::error(vec![ContentBlock::text(text)]).with_meta(Some(meta));
        Self {
            result,
            error_code: Some(code),
            stats: None,
            upstream_request_id: None,
            cost: CallCost::default(),
        }
    }

    fn with_stats(mut self, stats: CallStats) -> Self {
        self.stats = Some(stats);
        self
    }
}

/// The arguments `T` accepts: the properties of its input schema, so the list a client reads
/// in `tools/list` and the list enforced here cannot drift apart.
fn accepted_arguments<T: JsonSchema + 'static>() -> Vec<String> {
    // rmcp caches the schema per type.
    rmcp::handler::server::common::schema_for_input::<T>()
        .ok()
        .and_then(|schema| {
            schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|properties| properties.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// Parses `arguments` into `T`, refusing arguments that are not among its properties so a
/// misspelt option is reported rather than silently ignored. `fields` is the tool's own cell
/// for the property names, filled on first use.
///
/// # Errors
/// [`InvalidInput`] naming the offending argument.
pub fn parse_args<T: DeserializeOwned + JsonSchema + 'static>(
    arguments: Option<JsonObject>,
    fields: &'static OnceLock<Vec<String>>,
) -> Result<T, InvalidInput> {
    let fields: &'static [String] = fields.get_or_init(accepted_arguments::<T>);
    let arguments = arguments.unwrap_or_default();
    if let Some(unknown) = arguments.keys().find(|k| !fields.contains(k)) {
        return Err(InvalidInput {
            field: "arguments",
            message: format!(
                "unknown argument `{unknown}`; this tool accepts: {}",
                fields.join(", ")
            ),
        });
    }
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let field = if path == "." {
            argument_named_in(&message)
        } else {
            path
        };
        let top = field.split(['.', '[']).next().unwrap_or(&field);
        InvalidInput {
            field: known_field(fields, top),
            message,
        }
    })
}

/// The accepted argument called `name`, or `arguments` when there is none.
fn known_field(fields: &'static [String], name: &str) -> &'static str {
    fields
        .iter()
        .find(|known| *known == name)
        .map_or("arguments", String::as_str)
}

/// serde reports missing fields at the root; the field is the first name in backticks.
fn argument_named_in(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|name| !name.is_empty())
        .unwrap_or("arguments")
        .to_owned()
}

/// The input schema of `T` with schemars' `"default": null` (which no typed field accepts)
/// replaced by the real defaults, and properties overridden where a hand-written schema says
/// more (a boolean-or-name option).
pub fn input_schema<T: JsonSchema + 'static>(
    defaults: &[(&str, Value)],
    overrides: &[(&str, Value)],
) -> std::sync::Arc<JsonObject> {
    let mut input = rmcp::handler::server::common::schema_for_input::<T>()
        .expect("tool arguments are structs, so their schema is an object");
    if let Some(Value::Object(properties)) =
        std::sync::Arc::make_mut(&mut input).get_mut("properties")
    {
        for (name, schema) in properties.iter_mut() {
            let Some(schema) = schema.as_object_mut() else {
                continue;
            };
            schema.remove("default");
            if let Some((_, default)) = defaults.iter().find(|(n, _)| n == name) {
                schema.insert("default".to_owned(), default.clone());
            }
            if let Some((_, Value::Object(replacement))) = overrides.iter().find(|(n, _)| n == name)
            {
                let description = schema.remove("description");
                *schema = replacement.clone();
                if let Some(description) = description {
                    schema.insert("description".to_owned(), description);
                }
            }
        }
    }
    input
}

/// A tool definition with the annotations every web tool shares (read-only, idempotent, open
/// world) and the output schema of `O`.
pub fn web_tool<O: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    description: &'static str,
    input: std::sync::Arc<JsonObject>,
) -> Tool {
    let mut tool = Tool::new(name, description, input)
        .with_title(title)
        .with_annotations(
            // The title here too: clients that read only the annotations show it.
            ToolAnnotations::with_title(title)
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(true),
        );
    tool.output_schema = Some(rmcp::handler::server::common::schema_for_output::<O>());
    tool
}

/// Runs a web tool: the `parsed` arguments (an invalid one is answered as such) are `serve`d
/// through core, and the outcome is [`answer`]ed. Bad arguments and failures become tool
/// results with `isError: true` (SEP-1303), so the model can correct itself.
pub async fn run<R, T>(
    tool: &str,
    parsed: Result<R, InvalidInput>,
    serve: impl AsyncFnOnce(&R) -> Option<Served<T>>,
    slow_hint: &str,
    success: impl FnOnce(&R, &T, CallStats) -> ToolOutcome,
) -> ToolOutcome {
    let request = match parsed {
        Ok(request) => request,
        Err(invalid) => return invalid_argument(tool, &invalid),
    };
    let served = serve(&request).await;
    answer(tool, served, slow_hint, |results, stats| {
        success(&request, results, stats)
    })
}

/// The outcome of a served call: `success` for results, else the failure with `slow_hint` as
/// the advice after a timeout. `None` (a capability the backend lacks) cannot normally happen:
/// such tools are not listed.
fn answer<T>(
    tool: &str,
    served: Option<Served<T>>,
    slow_hint: &str,
    success: impl FnOnce(&T, CallStats) -> ToolOutcome,
) -> ToolOutcome {
    let Some(served) = served else {
        let unsupported = InvalidInput {
            field: "arguments",
            message: "this search backend does not support the tool".to_owned(),
        };
        return invalid_argument(tool, &unsupported);
    };
    match &served.result {
        Ok(results) => success(results, served.stats.clone()),
        Err(error) => failed(&served, error, slow_hint),
    }
}

/// A page the backend could not read (`fetch` of one page), with the backend's reason.
pub fn page_unreadable(tool: &str, url: &str, reason: &str, stats: CallStats) -> ToolOutcome {
    let text = format!(
        "{tool} could not read {url}: {reason}. Try another result, or retry later if the \
         site was slow."
    );
    ToolOutcome::error(text, "page_unreadable", json!({})).with_stats(stats)
}

/// An argument that breaks a rule.
pub fn invalid_argument(tool: &str, invalid: &InvalidInput) -> ToolOutcome {
    let text = format!(
        "Invalid argument `{}`: {}. Fix the argument and call {tool} again.",
        invalid.field, invalid.message
    );
    ToolOutcome::error(text, "invalid_argument", json!({ "field": invalid.field }))
}

/// Maps a failed call to a tool error that says what happened and what to do, with the code in
/// `_meta`. `slow_hint` is the tool's advice after a timeout.
fn failed<T>(served: &Served<T>, error: &SearchError, slow_hint: &str) -> ToolOutcome {
    upstream_error(error, slow_hint).with_stats(served.stats.clone())
}

fn retry_secs(after: Duration) -> u64 {
    // Round up: retrying a fraction of a second early would be refused again.
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

fn upstream_error(error: &SearchError, slow_hint: &str) -> ToolOutcome {
    let code = error.code();
    let (text, extra) = match error {
        SearchError::Rejected { reason } => (
            format!(
                "The search backend rejected this request: {reason}. Change the arguments and \
                 try again."
            ),
            json!({}),
        ),
        SearchError::BackendUnauthorized => {
            tracing::error!(
                error_code = code,
                "the search backend rejected searchgate's API key; check the configured key"
            );
            (
                "The search backend rejected searchgate's API key. This is a server configuration \
                 problem that retrying will not fix; tell the user that the searchgate operator \
                 must check the search API key."
                    .to_owned(),
                json!({}),
            )
        }
        SearchError::RateLimited { retry_after } => {
            let secs = retry_after.map_or(60, retry_secs);
            (
                format!("The search backend is rate limiting searchgate. Retry in {secs} seconds."),
                json!({ "retry_after_secs": secs }),
            )
        }
        SearchError::QuotaExhausted => {
            tracing::error!(
                error_code = code,
                "the search backend's credits are exhausted"
            );
            (
                "The search backend's credits are used up, so web tools fail until the \
                 searchgate operator adds credits. Retrying will not help."
                    .to_owned(),
                json!({}),
            )
        }
        SearchError::NotInPlan { reason } => {
            tracing::error!(
                error_code = code,
                reason = %reason,
                "the search backend's plan does not cover a call"
            );
            (
                format!(
                    "The search backend's plan does not cover this call ({reason}). Retrying \
                     will not help; tell the user that the searchgate operator must change the \
                     plan or the configured backend."
                ),
                json!({}),
            )
        }
        SearchError::Unavailable { reason } => {
            tracing::warn!(error_code = code, reason = %reason, "search backend unavailable");
            (
                "The search backend is unavailable right now. Retry in a few seconds.".to_owned(),
                json!({ "retry_after_secs": 5 }),
            )
        }
        SearchError::Timeout => {
            tracing::warn!(
                error_code = code,
                "the search backend did not answer in time"
            );
            (
                format!("The search backend did not answer in time. {slow_hint}"),
                json!({}),
            )
        }
        SearchError::TooManyCalls { retry_after } => {
            let secs = retry_secs(*retry_after);
            (
                format!(
                    "You are calling searchgate's web tools too often. Retry in {secs} seconds."
                ),
                json!({ "retry_after_secs": secs }),
            )
        }
        SearchError::BudgetExhausted { scope, resets_at } => {
            let secs = u64::try_from(
                resets_at.unix_seconds() - crate::domain::time::Timestamp::now().unix_seconds(),
            )
            .unwrap_or(0)
            .max(1);
            let at = crate::http::rfc3339(*resets_at);
            let whose = match scope {
                BudgetScope::Principal => "your",
                BudgetScope::Total => "this searchgate server's",
            };
            (
                format!(
                    "The daily web search budget of {whose} account is spent; it renews at {at} \
                     (in {secs} seconds). Tell the user; retrying before then will not help."
                ),
                json!({ "scope": scope.as_str(), "resets_at": at, "retry_after_secs": secs }),
            )
        }
        SearchError::EveryBackendFailed { failures } => {
            tracing::warn!(error_code = code, %error, "every search backend failed");
            let reasons: Vec<String> = failures
                .iter()
                .map(|f| match &f.error {
                    // Its details stay in the log, as for a single backend.
                    SearchError::Unexpected(_) => {
                        format!("{} ({}: an internal error)", f.provider, f.error.code())
                    }
                    other => format!("{} ({}: {other})", f.provider, other.code()),
                })
                .collect();
            let passing = failures.iter().any(|f| {
                f.error.is_transient() || matches!(f.error, SearchError::RateLimited { .. })
            });
            // The longest wait a backend asked for, at least the few seconds an outage takes.
            let wait = failures
                .iter()
                .filter_map(|f| match f.error {
                    SearchError::RateLimited { retry_after } => retry_after.map(retry_secs),
                    _ => None,
                })
                .fold(5, u64::max);
            let advice = if passing {
                format!("Retry in {wait} seconds.")
            } else {
                "Retrying will not help; tell the user that the searchgate operator must check \
                 the search backends."
                    .to_owned()
            };
            let listed: Vec<Value> = failures
                .iter()
                .map(|f| json!({ "provider": f.provider, "code": f.error.code() }))
                .collect();
            (
                format!(
                    "Every search backend failed: {}. {advice}",
                    reasons.join("; ")
                ),
                if passing {
                    json!({ "failures": listed, "retry_after_secs": wait })
                } else {
                    json!({ "failures": listed })
                },
            )
        }
        SearchError::Unexpected(inner) => {
            tracing::error!(error_code = code, error = ?inner, "a web tool failed unexpectedly");
            (
                "searchgate failed to run this tool because of an internal error. Retry later."
                    .to_owned(),
                json!({}),
            )
        }
    };
    ToolOutcome::error(text, code, extra)
}

/// How a call was served, ending every web tool's output.
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema, PartialEq)]
pub struct ServedOut {
    /// Whether searchgate answered from its cache of recent identical calls.
    #[serde(default)]
    pub cached: bool,
    /// Credits the call cost the operator's account, when the backend reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits: Option<f64>,
    /// What the call cost the operator's account in US dollars, when the backend reports money
    /// rather than credits (Exa).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_dollars: Option<f64>,
    /// The backend's id for this call, for support requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The backends that failed before the one that answered, in the order tried, each with
    /// its error code (only when one did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_from: Vec<FallbackOut>,
}

/// A backend that failed before another answered.
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema, PartialEq)]
pub struct FallbackOut {
    /// The backend's name.
    pub provider: String,
    /// Its error code, such as "upstream_quota_exhausted".
    pub error: String,
}

impl ServedOut {
    /// What `stats` and `usage` say about the call.
    pub fn new(stats: &CallStats, usage: &UpstreamUsage) -> Self {
        Self {
            cached: stats.cache_hit,
            credits: usage.credits,
            cost_dollars: usage.cost_dollars,
            request_id: usage.request_id.clone(),
            fallback_from: stats
                .fallback_from
                .iter()
                .map(|f| FallbackOut {
                    provider: f.provider.to_owned(),
                    error: f.code.to_owned(),
                })
                .collect(),
        }
    }
}

/// An optional closed-set argument parsed into its domain type.
///
/// # Errors
/// [`InvalidInput`] naming the argument and the accepted values.
pub fn parse_opt<T: FromStr<Err = InvalidInput>>(
    value: Option<String>,
) -> Result<Option<T>, InvalidInput> {
    value.as_deref().map(str::parse).transpose()
}

/// Replaces the description of property `name` in `input`, for a field shared by several tools
/// whose meaning differs slightly in one of them.
pub fn describe(input: &mut std::sync::Arc<JsonObject>, name: &str, text: &str) {
    if let Some(schema) = std::sync::Arc::make_mut(input)
        .get_mut("properties")
        .and_then(|properties| properties.get_mut(name))
        .and_then(Value::as_object_mut)
    {
        schema.insert("description".to_owned(), Value::String(text.to_owned()));
    }
}

/// An image as tools return it.
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema, PartialEq)]
pub struct ImageOut {
    /// The image URL.
    pub url: String,
    /// What the image shows, when described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl From<&Image> for ImageOut {
    fn from(image: &Image) -> Self {
        Self {
            url: image.url.clone(),
            description: image.description.clone(),
        }
    }
}

/// Converts a list of domain images.
pub fn images(images: &[Image]) -> Vec<ImageOut> {
    images.iter().map(ImageOut::from).collect()
}

/// Checks what a web tool's input schema promises a model: exactly `arguments` (in any order),
/// only `required` required, every argument described for a model and none ever null.
#[cfg(test)]
pub fn assert_input_schema(tool: &Tool, arguments: &[&str], required: &str) {
    let properties = tool.input_schema["properties"]
        .as_object()
        .expect("properties");
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = arguments.to_vec();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "the schema lists exactly the accepted arguments"
    );
    for (name, schema) in properties {
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            description.len() > 30,
            "`{name}` needs a description written for a model"
        );
        assert!(
            !schema.to_string().contains("\"null\""),
            "`{name}` may be left out but is never null: {schema}"
        );
    }
    assert_eq!(
        tool.input_schema["required"],
        json!([required]),
        "only {required} is required"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_times_round_up_to_whole_seconds() {
        assert_eq!(retry_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_secs(Duration::from_secs(30)), 30);
        assert_eq!(
            retry_secs(Duration::ZERO),
            1,
            "never \"retry in 0 seconds\""
        );
    }

    #[test]
    fn unknown_arguments_are_named_with_the_accepted_ones() {
        #[derive(serde::Deserialize, JsonSchema)]
        #[allow(dead_code, reason = "only parsed")]
        struct Args {
            query: String,
        }
        static FIELDS: OnceLock<Vec<String>> = OnceLock::new();
        let args = json!({ "query": "q", "colour": "red" });
        let err = parse_args::<Args>(args.as_object().cloned(), &FIELDS)
            .err()
            .expect("refused");
        assert_eq!(err.field, "arguments");
        assert!(
            err.message.contains("colour") && err.message.contains("accepts: query"),
            "{}",
            err.message
        );
    }
}
