//! A validated search request. Every field is checked once, here, so providers and tools can
//! rely on the bounds.

use std::{fmt, str::FromStr};

/// A search input that breaks a rule, naming the field so a model can correct it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {message}")]
pub struct InvalidInput {
    /// The argument's name as callers spell it (`query`, `max_results`, …).
    pub field: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl InvalidInput {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The search query: 1–400 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query(String);

impl Query {
    /// Longest accepted query, in characters (Tavily's limit).
    pub const MAX_CHARS: usize = 400;

    /// Trims `raw` and checks its length.
    ///
    /// # Errors
    /// [`InvalidInput`] on `query` when it is empty after trimming or longer than 400 characters.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(InvalidInput::new(
                "query",
                "must not be empty; give 1–400 characters",
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(InvalidInput::new(
                "query",
                format!("must be at most 400 characters after trimming; got {chars}"),
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The trimmed query text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How many results to return: 1–20, default 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxResults(u8);

impl MaxResults {
    /// Smallest accepted value.
    pub const MIN: i64 = 1;
    /// Largest accepted value.
    pub const MAX: i64 = 20;
    /// Used when the caller does not say.
    pub const DEFAULT: Self = Self(5);

    /// Checks the bounds.
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_results` outside 1–20.
    pub fn parse(value: i64) -> Result<Self, InvalidInput> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(u8::try_from(value).expect("1..=20 fits in u8")))
        } else {
            Err(InvalidInput::new(
                "max_results",
                format!("must be between 1 and 20; got {value}"),
            ))
        }
    }

    /// The value as a count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for MaxResults {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Declares a closed set of lowercase names with `FromStr`, `as_str` and the list of values.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = InvalidInput;

            fn from_str(value: &str) -> Result<Self, InvalidInput> {
                match value {
                    $($text => Ok(Self::$variant),)+
                    other => Err(InvalidInput::new(
                        $field,
                        format!("`{other}` is not one of: {}", Self::VALUES.join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set!(
    /// How thoroughly the backend searches (and what it costs).
    SearchDepth, "search_depth" {
        /// One summary per page; the default.
        Basic = "basic",
        /// Several relevant chunks per page; slower and dearer.
        Advanced = "advanced",
        /// Chunks with lower latency.
        Fast = "fast",
        /// The lowest latency, one summary per page.
        UltraFast = "ultra-fast",
    }
);

closed_set!(
    /// The kind of sources to favour.
    Topic, "topic" {
        /// Any web page; the default.
        General = "general",
        /// News articles, with publication dates.
        News = "news",
        /// Financial sources.
        Finance = "finance",
    }
);

closed_set!(
    /// How recent results must be.
    TimeRange, "time_range" {
        /// The last 24 hours.
        Day = "day",
        /// The last 7 days.
        Week = "week",
        /// The last 30 days.
        Month = "month",
        /// The last 365 days.
        Year = "year",
    }
);

/// A validated search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    query: Query,
    max_results: MaxResults,
    depth: SearchDepth,
    topic: Topic,
    time_range: Option<TimeRange>,
    include_domains: Vec<String>,
    exclude_domains: Vec<String>,
}

impl SearchRequest {
    /// Most domains that `include_domains` may list (Tavily's limit).
    pub const MAX_INCLUDE_DOMAINS: usize = 300;
    /// Most domains that `exclude_domains` may list (Tavily's limit).
    pub const MAX_EXCLUDE_DOMAINS: usize = 150;
    /// Longest accepted domain entry, in characters (a DNS name plus a short path).
    pub const MAX_DOMAIN_CHARS: usize = 253;

    /// A request for `query` with every option at its default.
    ///
    /// # Errors
    /// [`InvalidInput`] when the query breaks [`Query::parse`]'s rules.
    pub fn new(query: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            query: Query::parse(query)?,
            max_results: MaxResults::DEFAULT,
            depth: SearchDepth::Basic,
            topic: Topic::General,
            time_range: None,
            include_domains: Vec::new(),
            exclude_domains: Vec::new(),
        })
    }

    /// Sets how many results to return.
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_results` outside 1–20.
    pub fn with_max_results(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.max_results = MaxResults::parse(value)?;
        Ok(self)
    }

    /// Sets the search depth.
    pub fn with_depth(mut self, depth: SearchDepth) -> Self {
        self.depth = depth;
        self
    }

    /// Sets the topic.
    pub fn with_topic(mut self, topic: Topic) -> Self {
        self.topic = topic;
        self
    }

    /// Restricts results to a recent time range.
    pub fn with_time_range(mut self, time_range: TimeRange) -> Self {
        self.time_range = Some(time_range);
        self
    }

    /// Only returns results from these domains (normalized: scheme and trailing `/` removed,
    /// lowercased).
    ///
    /// # Errors
    /// [`InvalidInput`] on `include_domains` when it lists more than 300 entries or an entry is
    /// empty, too long or contains whitespace.
    pub fn with_include_domains(mut self, domains: &[String]) -> Result<Self, InvalidInput> {
        self.include_domains =
            normalize_domains("include_domains", domains, Self::MAX_INCLUDE_DOMAINS)?;
        Ok(self)
    }

    /// Never returns results from these domains (normalized like `include_domains`).
    ///
    /// # Errors
    /// [`InvalidInput`] on `exclude_domains` when it lists more than 150 entries or an entry is
    /// empty, too long or contains whitespace.
    pub fn with_exclude_domains(mut self, domains: &[String]) -> Result<Self, InvalidInput> {
        self.exclude_domains =
            normalize_domains("exclude_domains", domains, Self::MAX_EXCLUDE_DOMAINS)?;
        Ok(self)
    }

    /// The trimmed query.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// How many results to return at most.
    pub fn max_results(&self) -> MaxResults {
        self.max_results
    }

    /// The search depth.
    pub fn depth(&self) -> SearchDepth {
        self.depth
    }

    /// The topic.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// The time range, when restricted.
    pub fn time_range(&self) -> Option<TimeRange> {
        self.time_range
    }

    /// Domains results must come from; empty means any.
    pub fn include_domains(&self) -> &[String] {
        &self.include_domains
    }

    /// Domains results must not come from.
    pub fn exclude_domains(&self) -> &[String] {
        &self.exclude_domains
    }
}

fn normalize_domains(
    field: &'static str,
    domains: &[String],
    max: usize,
) -> Result<Vec<String>, InvalidInput> {
    if domains.len() > max {
        return Err(InvalidInput::new(
            field,
            format!("may list at most {max} domains; got {}", domains.len()),
        ));
    }
    domains
        .iter()
        .map(|raw| {
            let trimmed = raw.trim();
            let bare = trimmed
                .strip_prefix("https://")
                .or_else(|| trimmed.strip_prefix("http://"))
                .unwrap_or(trimmed)
                .trim_end_matches('/');
            if bare.is_empty() {
                return Err(InvalidInput::new(field, "entries must not be empty"));
            }
            if bare.chars().count() > SearchRequest::MAX_DOMAIN_CHARS {
                return Err(InvalidInput::new(
                    field,
                    format!(
                        "entries must be at most {} characters",
                        SearchRequest::MAX_DOMAIN_CHARS
                    ),
                ));
            }
            if bare.chars().any(char::is_whitespace) {
                return Err(InvalidInput::new(
                    field,
                    format!("`{bare}` is not a domain; give names like example.com or *.gov"),
                ));
            }
            Ok(bare.to_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_length_is_counted_in_characters_after_trimming() {
        let cases: &[(&str, Result<&str, &str>, &str)] = &[
            ("rust", Ok("rust"), "a plain query passes"),
            ("  rust  ", Ok("rust"), "surrounding whitespace is trimmed"),
            ("", Err("query"), "an empty query is refused"),
            (
                "   \n\t ",
                Err("query"),
                "whitespace only is empty after trimming",
            ),
        ];
        for (raw, expected, reason) in cases {
            let got = Query::parse(raw);
            match expected {
                Ok(text) => assert_eq!(got.map(|q| q.0).as_deref(), Ok(*text), "{reason}"),
                Err(field) => assert_eq!(got.map_err(|e| e.field), Err(*field), "{reason}"),
            }
        }
        assert!(
            Query::parse(&"é".repeat(400)).is_ok(),
            "400 two-byte characters are 400 characters"
        );
        let too_long = Query::parse(&"a".repeat(401)).expect_err("401 characters is one too many");
        assert_eq!(
            too_long.to_string(),
            "invalid `query`: must be at most 400 characters after trimming; got 401"
        );
    }

    #[test]
    fn max_results_accepts_one_to_twenty() {
        for (value, ok) in [
            (0, false),
            (1, true),
            (5, true),
            (20, true),
            (21, false),
            (-3, false),
        ] {
            assert_eq!(MaxResults::parse(value).is_ok(), ok, "max_results {value}");
        }
        assert_eq!(
            MaxResults::parse(21).unwrap_err().to_string(),
            "invalid `max_results`: must be between 1 and 20; got 21"
        );
        assert_eq!(MaxResults::default().get(), 5, "the default is five");
    }

    #[test]
    fn closed_sets_parse_their_spellings_and_list_them_on_error() {
        assert_eq!(
            "ultra-fast".parse::<SearchDepth>(),
            Ok(SearchDepth::UltraFast)
        );
        assert_eq!("news".parse::<Topic>(), Ok(Topic::News));
        assert_eq!("year".parse::<TimeRange>(), Ok(TimeRange::Year));
        let err = "deep".parse::<SearchDepth>().unwrap_err();
        assert_eq!(err.field, "search_depth");
        assert_eq!(
            err.message,
            "`deep` is not one of: basic, advanced, fast, ultra-fast"
        );
        assert!(
            "News".parse::<Topic>().is_err(),
            "spellings are case-sensitive, as on the wire"
        );
    }

    #[test]
    fn domains_are_normalized_and_bounded() {
        let request = SearchRequest::new("q")
            .and_then(|r| r.with_include_domains(&["https://Docs.RS/".into(), " *.gov ".into()]))
            .expect("valid domains");
        assert_eq!(request.include_domains(), ["docs.rs", "*.gov"]);

        let too_many = vec!["a.com".to_owned(); 151];
        let err = SearchRequest::new("q")
            .unwrap()
            .with_exclude_domains(&too_many)
            .unwrap_err();
        assert_eq!(err.field, "exclude_domains", "the limit names its field");
        assert!(
            SearchRequest::new("q")
                .unwrap()
                .with_include_domains(&too_many)
                .is_ok(),
            "include allows 300"
        );

        let spaced = SearchRequest::new("q")
            .unwrap()
            .with_include_domains(&["a b.com".into()]);
        assert_eq!(spaced.unwrap_err().field, "include_domains");
        let empty = SearchRequest::new("q")
            .unwrap()
            .with_include_domains(&["https://".into()]);
        assert!(empty.is_err(), "a bare scheme is an empty domain");
    }

    #[test]
    fn a_new_request_has_the_documented_defaults() {
        let request = SearchRequest::new("rust async").unwrap();
        assert_eq!(request.max_results().get(), 5);
        assert_eq!(request.depth(), SearchDepth::Basic);
        assert_eq!(request.topic(), Topic::General);
        assert_eq!(request.time_range(), None);
        assert!(request.include_domains().is_empty() && request.exclude_domains().is_empty());
    }
}
