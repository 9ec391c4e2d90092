//! Layering with figment, the seed project's alias variables, and error messages that name the
//! setting, its source and the fix.

use std::{fmt, net::SocketAddr, path::PathBuf};

use figment::{
    Figment, Metadata, Profile, Provider, Source,
    error::Kind,
    providers::{Env, Format, Serialized, Toml},
    value::{Dict, Map, Value},
};
use serde::{Deserialize, Deserializer};

use super::{Settings, validate};

/// The metadata name of the alias layer, used to recognise it in error messages.
const ALIASES: &str = "seed-project alias variables";

/// Invalid configuration: one or more problems, each naming its setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Everything found wrong, in a stable order.
    pub problems: Vec<Problem>,
}

/// One invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting's key path, such as `server.bind`.
    pub setting: String,
    /// Where the value came from: an environment variable's name, a file, or the default.
    pub source: String,
    /// The offending value, redacted for secrets; `None` when there is no single value.
    pub value: Option<String>,
    /// What is wrong and what would be accepted.
    pub expected: String,
}

impl ConfigError {
    pub(super) fn single(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for p in &self.problems {
            write!(f, "\n  - {} (from {})", p.setting, p.source)?;
            if let Some(value) = &p.value {
                write!(f, " = {value}")?;
            }
            write!(f, ": {}", p.expected)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn load(config_file: Option<PathBuf>) -> Result<Settings, ConfigError> {
    let figment = layered(config_file)?;
    let settings: Settings = figment.extract().map_err(|e| from_figment(&figment, e))?;
    // The providers are parsed again, from settings possibly changed in code, when served.
    validate::validate(&settings, &figment, false)?;
    Ok(settings)
}

fn layered(config_file: Option<PathBuf>) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    let config_file =
        config_file.or_else(|| std::env::var_os("SEARCHGATE_CONFIG").map(PathBuf::from));
    if let Some(path) = config_file {
        if !path.is_file() {
            return Err(ConfigError::single(Problem {
                setting: "--config".to_owned(),
                source: "the command line or SEARCHGATE_CONFIG".to_owned(),
                value: Some(format!("{:?}", path.display().to_string())),
                expected: "the path of a readable TOML file".to_owned(),
            }));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    let aliases = Aliases::from_env(&figment)?;
    Ok(figment.merge(aliases).merge(
        Env::prefixed("SEARCHGATE_")
            // Only section keys (and `profile`) are settings; SEARCHGATE_CONFIG and test
            // variables such as SEARCHGATE_TEST_POSTGRES_URL are not.
            .filter(|key| key.as_str().contains("__") || key == "profile")
            .split("__"),
    ))
}

/// Settings a program built in code, as a figment layer so validation can describe them.
pub(super) struct InCode<'a>(pub &'a Settings);

/// The metadata name of [`InCode`].
const IN_CODE: &str = "settings built in code";

impl Provider for InCode<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(IN_CODE)
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Serialized::defaults(self.0).data()
    }
}

/// The seed project's variables, mapped onto searchgate's settings.
struct Aliases {
    values: Dict,
}

impl Aliases {
    fn from_env(base: &Figment) -> Result<Self, ConfigError> {
        let mut values = Dict::new();
        let mut set = |path: &[&str], value: Value| insert_path(&mut values, path, value);
        if let Some(port) = non_empty_var("PORT") {
            let port: u16 = port.trim().parse().map_err(|_| {
                ConfigError::single(Problem {
                    setting: "server.bind".to_owned(),
                    source: "PORT".to_owned(),
                    value: Some(format!("{port:?}")),
                    expected: "a port number from 0 to 65535".to_owned(),
                })
            })?;
            // PORT replaces only the port; the host comes from the default or the file.
            let host = base
                .extract_inner::<SocketAddr>("server.bind")
                .map(|addr| addr.ip())
                .unwrap_or_else(|_| [127, 0, 0, 1].into());
            set(
                &["server", "bind"],
                SocketAddr::new(host, port).to_string().into(),
            );
        }
        for (variable, path) in [
            ("TAVILY_API_KEY", ["search", "tavily", "api_key"]),
            ("BRAVE_API_KEY", ["search", "brave", "api_key"]),
            ("EXA_API_KEY", ["search", "exa", "api_key"]),
            ("SEARXNG_URL", ["search", "searxng", "base_url"]),
        ] {
            if let Some(value) = non_empty_var(variable) {
                set(&path, value.into());
            }
        }
        if let Some(url) = non_empty_var("SCALEKIT_ENVIRONMENT_URL") {
            set(&["auth", "scalekit", "environment_url"], url.into());
        }
        if let Some(id) = non_empty_var("RESOURCE_IDENTIFIER") {
            set(&["auth", "scalekit", "resource_id"], id.into());
        }
        Ok(Self { values })
    }
}

impl Provider for Aliases {
    fn metadata(&self) -> Metadata {
        Metadata::named(ALIASES).interpolater(|_: &Profile, keys: &[&str]| {
            match keys.join(".").as_str() {
                "server.bind" => "PORT",
                "search.tavily.api_key" => "TAVILY_API_KEY",
                "search.brave.api_key" => "BRAVE_API_KEY",
                "search.exa.api_key" => "EXA_API_KEY",
                "search.searxng.base_url" => "SEARXNG_URL",
                "auth.scalekit.environment_url" => "SCALEKIT_ENVIRONMENT_URL",
                "auth.scalekit.resource_id" => "RESOURCE_IDENTIFIER",
                _ => "a seed-project variable",
            }
            .to_owned()
        })
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn insert_path(dict: &mut Dict, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry((*first).to_owned())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Where the value at `path` came from, in words an operator can act on.
pub(super) fn describe_source(figment: &Figment, path: &[&str]) -> String {
    describe_metadata(figment.find_metadata(&path.join(".")), path)
}

fn describe_metadata(metadata: Option<&Metadata>, path: &[&str]) -> String {
    let Some(metadata) = metadata else {
        return "an unknown source".to_owned();
    };
    if metadata.name.starts_with("`SEARCHGATE_`") {
        return format!("SEARCHGATE_{}", path.join("__").to_ascii_uppercase());
    }
    if metadata.name == IN_CODE {
        return IN_CODE.to_owned();
    }
    if metadata.name == ALIASES {
        return metadata.interpolate(&Profile::Default, path);
    }
    match &metadata.source {
        Some(Source::File(file)) => format!("`{}` in {}", path.join("."), file.display()),
        _ => "the compiled default".to_owned(),
    }
}

/// Whether a setting holds a secret, so its value is never echoed.
pub(super) fn is_secret(path: &[&str]) -> bool {
    path.last().is_some_and(|key| {
        key.contains("key") || key.contains("secret") || key.contains("password")
    })
}

/// The value at `path` as the operator wrote it, redacted for secrets.
pub(super) fn shown_value(figment: &Figment, path: &[&str]) -> Option<String> {
    if is_secret(path) {
        return Some("<redacted>".to_owned());
    }
    let value = figment.find_value(&path.join(".")).ok()?;
    Some(match value {
        // A database URL may carry a password.
        Value::String(_, s) if path == ["database", "url"] => {
            format!("{:?}", super::redact_url(&s))
        }
        Value::String(_, s) => format!("{s:?}"),
        other => serde_json::to_string(&other).unwrap_or_else(|_| "<unprintable>".to_owned()),
    })
}

fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    let problems = error
        .into_iter()
        .map(|e| {
            let mut path: Vec<String> = e.path.clone();
            let expected = match &e.kind {
                Kind::UnknownField(field, known) => {
                    if path.last() != Some(field) {
                        path.push(field.clone());
                    }
                    format!(
                        "no such setting; this section accepts: {}",
                        known.join(", ")
                    )
                }
                Kind::UnknownVariant(_, known) => format!("expected one of: {}", known.join(", ")),
                // serde's messages quote the value, which must not happen for a secret.
                _ if is_secret(&refs(&path)) => "not a valid value".to_owned(),
                kind => kind.to_string(),
            };
            let keys = refs(&path);
            Problem {
                setting: path.join("."),
                source: describe_metadata(e.metadata.as_ref(), &keys),
                value: shown_value(figment, &keys),
                expected,
            }
        })
        .collect();
    ConfigError { problems }
}

fn refs(path: &[String]) -> Vec<&str> {
    path.iter().map(String::as_str).collect()
}

/// A map whose values are lists, each given as a list or one comma-separated string.
pub(super) fn map_of_lists<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    struct List(#[serde(deserialize_with = "string_or_list")] Vec<String>);
    let map = std::collections::BTreeMap::<String, List>::deserialize(deserializer)?;
    Ok(map
        .into_iter()
        .map(|(key, List(list))| (key, list))
        .collect())
}

/// Accepts a list of strings or one comma-separated string (the natural form in environment
/// variables).
pub(crate) fn string_or_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(list) => list,
    })
}

#[cfg(test)]
#[allow(
    clippy::result_large_err,
    reason = "figment::Jail fixes the closure's error type"
)]
mod tests {
    use figment::Jail;

    use super::*;
    use crate::config::{AuthProviderKind, SearchProviderKind, tests::load_env};

    fn problems(result: Result<Settings, ConfigError>) -> Vec<Problem> {
        result
            .expect_err("the configuration must be refused")
            .problems
    }

    #[test]
    fn defaults_need_no_configuration() {
        let settings = load_env(&[]).expect("defaults are valid");
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:10000");
        assert_eq!(settings.server.mcp_path, "/web-search/mcp");
        assert_eq!(settings.database.url, "sqlite://searchgate.db");
        assert_eq!(settings.search_providers(), [SearchProviderKind::Mock]);
        assert_eq!(settings.auth.provider, AuthProviderKind::Embedded);
        assert_eq!(
            settings.search.tavily.base_url.as_str(),
            "https://api.tavily.com/"
        );
        assert_eq!(settings.search.cache_ttl_secs, 600, "ten minutes");
        assert_eq!(settings.search.rate_limit_per_minute, 60);
        assert_eq!(settings.search.deadlines.crawl_secs, 150);
        assert_eq!(
            settings.auth.tool_scopes.keys().collect::<Vec<_>>(),
            [
                "fetch",
                "search",
                "web_crawl",
                "web_extract",
                "web_map",
                "web_search"
            ],
            "every tool needs a scope by default"
        );
    }

    #[test]
    fn environment_overrides_the_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "sg.toml",
                "[server]\nbind = \"127.0.0.1:7000\"\nmcp_path = \"/from-file\"\n",
            )?;
            jail.set_env("SEARCHGATE_SERVER__MCP_PATH", "/from-env");
            let settings = load(Some("sg.toml".into())).expect("valid");
            assert_eq!(
                settings.server.bind.port(),
                7000,
                "the file beats the default"
            );
            assert_eq!(
                settings.server.mcp_path, "/from-env",
                "the environment beats the file"
            );
            Ok(())
        });
    }

    #[test]
    fn searchgate_config_names_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "[database]\nurl = \"sqlite://other.db\"\n")?;
            jail.set_env("SEARCHGATE_CONFIG", "other.toml");
            assert_eq!(load(None).expect("valid").database.url, "sqlite://other.db");
            Ok(())
        });
    }

    #[test]
    fn a_toml_file_lists_backends_as_a_list() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "searchgate.toml",
                "[search]\nprovider = [\"exa\", \"mock\"]\n[search.exa]\napi_key = \"exa-file\"\n",
            )?;
            jail.set_env("SEARCHGATE_CONFIG", "searchgate.toml");
            let s = load(None).expect("valid");
            assert_eq!(
                s.search_providers(),
                [SearchProviderKind::Exa, SearchProviderKind::Mock]
            );
            Ok(())
        });
    }

    #[test]
    fn every_documented_variable_name_is_read() {
        let s = load_env(&[
            ("SEARCHGATE_SERVER__BIND", "127.0.0.1:4000"),
            (
                "SEARCHGATE_SERVER__PUBLIC_URL",
                "https://search.example.com",
            ),
            ("SEARCHGATE_SERVER__MCP_PATH", "/mcp"),
            ("SEARCHGATE_DATABASE__URL", "sqlite://x.db"),
            ("SEARCHGATE_SEARCH__PROVIDER", "tavily"),
            ("SEARCHGATE_SEARCH__TAVILY__API_KEY", "tvly-abc"),
            ("SEARCHGATE_SEARCH__TAVILY__BASE_URL", "http://127.0.0.1:9/"),
            ("SEARCHGATE_SEARCH__CACHE_TTL_SECS", "0"),
            ("SEARCHGATE_SEARCH__CACHE_MAX_MB", "8"),
            ("SEARCHGATE_SEARCH__RATE_LIMIT_PER_MINUTE", "120"),
            ("SEARCHGATE_SEARCH__DEADLINES__SEARCH_SECS", "5"),
            ("SEARCHGATE_SEARCH__DEADLINES__EXTRACT_SECS", "6"),
            ("SEARCHGATE_SEARCH__DEADLINES__CRAWL_SECS", "7"),
            ("SEARCHGATE_SEARCH__DEADLINES__MAP_SECS", "8"),
            ("SEARCHGATE_AUTH__PROVIDER", "oidc"),
            ("SEARCHGATE_AUTH__OIDC__ISSUER", "https://idp.example.com"),
        ])
        .expect("valid");
        assert_eq!(s.server.bind.port(), 4000);
        assert_eq!(
            s.server.public_url.as_ref().map(|u| u.as_str()),
            Some("https://search.example.com/")
        );
        assert_eq!(s.server.mcp_path, "/mcp");
        assert_eq!(s.database.url, "sqlite://x.db");
        assert_eq!(s.search_providers(), [SearchProviderKind::Tavily]);
        assert_eq!(
            s.search.tavily.api_key.as_ref().map(|k| k.expose()),
            Some("tvly-abc")
        );
        assert_eq!(s.search.tavily.base_url.as_str(), "http://127.0.0.1:9/");
        assert_eq!(
            (
                s.search.cache_ttl_secs,
                s.search.cache_max_mb,
                s.search.rate_limit_per_minute
            ),
            (0, 8, 120)
        );
        let d = &s.search.deadlines;
        assert_eq!(
            (d.search_secs, d.extract_secs, d.crawl_secs, d.map_secs),
            (5, 6, 7, 8)
        );
        assert_eq!(s.auth.provider, AuthProviderKind::Oidc);
    }

    #[test]
    fn seed_project_variables_are_aliases() {
        let s = load_env(&[
            ("PORT", "8123"),
            ("TAVILY_API_KEY", "tvly-seed"),
            ("SCALEKIT_ENVIRONMENT_URL", "https://acme.scalekit.dev"),
            ("RESOURCE_IDENTIFIER", "res_123"),
        ])
        .expect("valid");
        assert_eq!(
            s.server.bind.to_string(),
            "127.0.0.1:8123",
            "PORT sets only the port"
        );
        assert_eq!(
            s.search_providers(),
            [SearchProviderKind::Tavily],
            "a Tavily key selects Tavily"
        );
        assert_eq!(
            s.auth.scalekit.environment_url.as_ref().map(|u| u.as_str()),
            Some("https://acme.scalekit.dev/")
        );
        assert_eq!(s.auth.scalekit.resource_id.as_deref(), Some("res_123"));
    }

    #[test]
    fn searchgate_variables_beat_their_aliases() {
        let s = load_env(&[
            ("PORT", "8123"),
            ("SEARCHGATE_SERVER__BIND", "127.0.0.1:9000"),
            ("TAVILY_API_KEY", "tvly-seed"),
            ("SEARCHGATE_SEARCH__PROVIDER", "mock"),
        ])
        .expect("valid");
        assert_eq!(s.server.bind.port(), 9000);
        assert_eq!(
            s.search_providers(),
            [SearchProviderKind::Mock],
            "an explicit provider wins over the key"
        );
    }

    #[test]
    fn a_bad_port_alias_names_port() {
        let p = problems(load_env(&[("PORT", "eighty")]));
        assert_eq!(p[0].source, "PORT");
        assert_eq!(p[0].value.as_deref(), Some("\"eighty\""));
    }

    #[test]
    fn search_backends_are_an_ordered_list_with_their_own_keys() {
        let s = load_env(&[
            ("SEARCHGATE_SEARCH__PROVIDER", "searxng, brave,tavily"),
            ("TAVILY_API_KEY", "tvly-seed"),
            ("BRAVE_API_KEY", "brave-seed"),
            ("SEARXNG_URL", "http://127.0.0.1:8888"),
            ("SEARCHGATE_SEARCH__COOLDOWN_SECS", "60"),
        ])
        .expect("valid");
        assert_eq!(
            s.search_providers(),
            [
                SearchProviderKind::Searxng,
                SearchProviderKind::Brave,
                SearchProviderKind::Tavily
            ],
            "the order written"
        );
        assert_eq!(s.search.cooldown_secs, 60);
        let names: Vec<_> = s
            .validate()
            .unwrap()
            .search
            .iter()
            .map(|b| b.name())
            .collect();
        assert_eq!(names, ["searxng", "brave", "tavily"]);
    }

    #[test]
    fn unlisted_backends_are_chosen_by_which_keys_are_set() {
        let s = load_env(&[
            ("SEARXNG_URL", "http://127.0.0.1:8888"),
            ("EXA_API_KEY", "exa-seed"),
            ("BRAVE_API_KEY", "brave-seed"),
        ])
        .expect("valid");
        assert_eq!(
            s.search_providers(),
            [
                SearchProviderKind::Brave,
                SearchProviderKind::Exa,
                SearchProviderKind::Searxng
            ]
        );
    }

    #[test]
    fn a_listed_backend_needs_its_key_and_appears_once() {
        let p = problems(load_env(&[(
            "SEARCHGATE_SEARCH__PROVIDER",
            "brave,exa,brave",
        )]));
        let settings: Vec<&str> = p.iter().map(|p| p.setting.as_str()).collect();
        assert!(settings.contains(&"search.provider"), "{p:?}");
        let brave = p
            .iter()
            .find(|p| p.setting == "search.brave.api_key")
            .unwrap();
        assert!(
            brave.expected.contains("BRAVE_API_KEY"),
            "{}",
            brave.expected
        );
        assert!(settings.contains(&"search.exa.api_key"), "{p:?}");
        let searxng = problems(load_env(&[("SEARCHGATE_SEARCH__PROVIDER", "searxng")]));
        assert_eq!(searxng[0].setting, "search.searxng.base_url");
        assert!(searxng[0].expected.contains("SEARXNG_URL"));
    }

    #[test]
    fn the_reader_may_not_read_private_addresses_in_production() {
        let allowed = [("SEARCHGATE_SEARCH__READER__ALLOW_PRIVATE_ADDRESSES", "true")];
        assert!(
            load_env(&allowed)
                .unwrap()
                .search
                .reader
                .allow_private_addresses
        );
        let p = problems(load_env(&[
            allowed[0],
            ("SEARCHGATE_PROFILE", "production"),
        ]));
        assert!(
            p.iter()
                .any(|p| p.setting == "search.reader.allow_private_addresses"),
            "{p:?}"
        );
    }

    #[test]
    fn placeholder_results_never_back_up_real_ones_in_production() {
        let listed = [
            ("SEARCHGATE_SEARCH__PROVIDER", "brave,mock"),
            ("BRAVE_API_KEY", "k"),
        ];
        assert!(load_env(&listed).is_ok(), "fine for development");
        let p = problems(load_env(&[
            listed[0],
            listed[1],
            ("SEARCHGATE_PROFILE", "production"),
        ]));
        assert!(
            p.iter()
                .any(|p| p.setting == "search.provider" && p.expected.contains("placeholder")),
            "{p:?}"
        );
    }

    #[test]
    fn a_bad_enum_value_names_the_variable_the_value_and_the_choices() {
        let p = problems(load_env(&[("SEARCHGATE_SEARCH__PROVIDER", "bing")]));
        assert_eq!(p[0].setting, "search.provider");
        assert_eq!(p[0].source, "SEARCHGATE_SEARCH__PROVIDER");
        assert_eq!(p[0].value.as_deref(), Some("\"bing\""));
        assert_eq!(
            p[0].expected,
            "expected one of: mock, tavily, brave, searxng, exa"
        );
    }

    #[test]
    fn a_misspelt_variable_is_an_unknown_setting_not_silently_ignored() {
        let p = problems(load_env(&[
            ("SEARCHGATE_SERVER__BINDD", "127.0.0.1:1"),
            ("SEARCHGATE_TEST_POSTGRES_URL", "postgres://ignored"),
        ]));
        assert_eq!(
            p.len(),
            1,
            "test variables without a section are not settings: {p:?}"
        );
        assert_eq!(p[0].setting, "server.bindd");
        assert_eq!(p[0].source, "SEARCHGATE_SERVER__BINDD");
        assert!(
            p[0].expected.contains("bind, public_url"),
            "{}",
            p[0].expected
        );
    }

    #[test]
    fn settings_built_in_code_are_held_to_the_same_rules() {
        let mut settings = Settings::default();
        assert!(settings.validate().is_ok(), "the defaults are valid");
        settings.server.mcp_path = "no-slash".into();
        let p = settings.validate().expect_err("an invalid path").problems;
        assert_eq!(
            (p[0].setting.as_str(), p[0].source.as_str()),
            ("server.mcp_path", "settings built in code")
        );
        assert_eq!(p[0].value.as_deref(), Some("\"no-slash\""));
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        Jail::expect_with(|_| {
            let p = problems(load(Some("absent.toml".into())));
            assert_eq!(p[0].setting, "--config");
            Ok(())
        });
    }

    #[test]
    fn lists_accept_commas_in_environment_variables() {
        let s = load_env(&[(
            "SEARCHGATE_SERVER__ALLOWED_HOSTS",
            "a.example.com, b.example.com",
        )])
        .expect("valid");
        assert_eq!(s.server.allowed_hosts, ["a.example.com", "b.example.com"]);
    }
}
