//! A validated search request. Every field is checked once, here, so providers and tools can
//! rely on the bounds.

use std::fmt;

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
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// The search query: 1–400 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

/// How many results to return: 0–20, default 5 (0 is useful with `include_answer`: the answer
/// alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaxResults(u8);

impl MaxResults {
    /// Smallest accepted value.
    pub const MIN: i64 = 0;
    /// Largest accepted value.
    pub const MAX: i64 = 20;
    /// Used when the caller does not say.
    pub const DEFAULT: Self = Self(5);

    /// Checks the bounds.
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_results` outside 0–20.
    pub fn parse(value: i64) -> Result<Self, InvalidInput> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Self(u8::try_from(value).expect("0..=20 fits in u8")))
        } else {
            Err(InvalidInput::new(
                "max_results",
                format!("must be between 0 and 20; got {value}"),
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
/// Extra spellings after `|` are accepted on input but never listed or sent.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)? }) => {
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

        impl std::str::FromStr for $name {
            type Err = $crate::domain::search::InvalidInput;

            fn from_str(value: &str) -> Result<Self, $crate::domain::search::InvalidInput> {
                match value {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    other => Err($crate::domain::search::InvalidInput::new(
                        $field,
                        format!("`{other}` is not one of: {}", Self::VALUES.join(", ")),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(super) use closed_set;

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
        Day = "day" | "d",
        /// The last 7 days.
        Week = "week" | "w",
        /// The last 30 days.
        Month = "month" | "m",
        /// The last 365 days.
        Year = "year" | "y",
    }
);

closed_set!(
    /// Whether and how thoroughly the backend writes an answer from the results.
    AnswerDepth, "include_answer" {
        /// A short answer (what `true` means).
        Basic = "basic",
        /// A longer, more detailed answer.
        Advanced = "advanced",
    }
);

closed_set!(
    /// The format of a page's full text.
    ContentFormat, "format" {
        /// Markdown (what `true` means for `include_raw_content`).
        Markdown = "markdown",
        /// Plain text.
        Text = "text",
    }
);

/// A calendar date `YYYY-MM-DD`, checked for a real month and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    ///
    /// # Errors
    /// [`InvalidInput`] on `field` when the text is not such a date.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                field,
                format!("`{raw}` is not a date; write YYYY-MM-DD, such as 2025-01-31"),
            )
        };
        let bytes = raw.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(bad());
        }
        let number = |range: std::ops::Range<usize>| -> Result<u16, InvalidInput> {
            let part = &raw[range];
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let real = chrono::NaiveDate::from_ymd_opt(year.into(), month.into(), day.into());
        if year < 1900 || real.is_none() {
            return Err(bad());
        }
        Ok(Self {
            year,
            month: u8::try_from(month).map_err(|_| bad())?,
            day: u8::try_from(day).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// What a caller asks of a search, as written. [`SearchRequest::new`] checks every rule, those
/// of one option and those that involve several, so a [`SearchRequest`] is valid by
/// construction. Options left at their default are not sent to the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// The query: 1–400 characters after trimming.
    pub query: String,
    /// How many results to return, 0–20 (default 5).
    pub max_results: Option<i64>,
    /// How thoroughly to search.
    pub depth: Option<SearchDepth>,
    /// The kind of sources to favour (`country` needs `general`).
    pub topic: Option<Topic>,
    /// How recent results must be (not with dates).
    pub time_range: Option<TimeRange>,
    /// The earliest publication date (not with `time_range`; not after `end_date`).
    pub start_date: Option<Date>,
    /// The latest publication date (not with `time_range`).
    pub end_date: Option<Date>,
    /// Excerpts per page, 1–3 (`advanced` and `fast` depth only).
    pub chunks_per_source: Option<i64>,
    /// Whether and how thoroughly to write an answer from the results.
    pub include_answer: Option<AnswerDepth>,
    /// Whether and in which format to include each page's full text.
    pub include_raw_content: Option<ContentFormat>,
    /// Whether to include images related to the query.
    pub include_images: bool,
    /// Whether to describe each image (needs `include_images`).
    pub include_image_descriptions: bool,
    /// Whether to include each result's favicon URL.
    pub include_favicon: bool,
    /// Domains results must come from (at most 300; normalized: scheme and trailing `/`
    /// removed, lowercased).
    pub include_domains: Vec<String>,
    /// Domains results must not come from (at most 150; normalized like `include_domains`).
    pub exclude_domains: Vec<String>,
    /// A country to boost, by its English name (`general` topic only).
    pub country: Option<String>,
    /// Whether the backend may choose topic, depth and time range from the query.
    pub auto_parameters: bool,
    /// Whether quoted phrases must match verbatim.
    pub exact_match: bool,
}

impl SearchOptions {
    /// Options for `query` with every other option at its default.
    pub fn query(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            ..Self::default()
        }
    }
}

/// A validated search request. Options the caller did not set stay `None`, so a backend sends
/// only what was asked for; the getters without `requested_` give the effective value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchRequest {
    query: Query,
    max_results: MaxResults,
    depth: Option<SearchDepth>,
    topic: Option<Topic>,
    time_range: Option<TimeRange>,
    start_date: Option<Date>,
    end_date: Option<Date>,
    chunks_per_source: Option<u16>,
    include_answer: Option<AnswerDepth>,
    include_raw_content: Option<ContentFormat>,
    include_images: bool,
    include_image_descriptions: bool,
    include_favicon: bool,
    include_domains: Vec<String>,
    exclude_domains: Vec<String>,
    country: Option<String>,
    auto_parameters: bool,
    exact_match: bool,
}

impl SearchRequest {
    /// Most domains that `include_domains` may list (Tavily's limit).
    pub const MAX_INCLUDE_DOMAINS: usize = 300;
    /// Most domains that `exclude_domains` may list (Tavily's limit).
    pub const MAX_EXCLUDE_DOMAINS: usize = 150;
    /// Longest accepted domain entry, in characters (a DNS name plus a short path).
    pub const MAX_DOMAIN_CHARS: usize = 253;
    /// Longest accepted country name, in characters.
    pub const MAX_COUNTRY_CHARS: usize = 60;

    /// Checks `options`, each on its own and then those that involve several, in the order
    /// they are declared.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first option that breaks a rule or conflicts with another.
    pub fn new(options: SearchOptions) -> Result<Self, InvalidInput> {
        let request = Self {
            query: Query::parse(&options.query)?,
            max_results: options
                .max_results
                .map(MaxResults::parse)
                .transpose()?
                .unwrap_or_default(),
            depth: options.depth,
            topic: options.topic,
            time_range: options.time_range,
            start_date: options.start_date,
            end_date: options.end_date,
            chunks_per_source: options
                .chunks_per_source
                .map(|n| bounded_count("chunks_per_source", n, 1, 3))
                .transpose()?,
            include_answer: options.include_answer,
            include_raw_content: options.include_raw_content,
            include_images: options.include_images,
            include_image_descriptions: options.include_image_descriptions,
            include_favicon: options.include_favicon,
            include_domains: normalize_domains(
                "include_domains",
                &options.include_domains,
                Self::MAX_INCLUDE_DOMAINS,
            )?,
            exclude_domains: normalize_domains(
                "exclude_domains",
                &options.exclude_domains,
                Self::MAX_EXCLUDE_DOMAINS,
            )?,
            country: options.country.as_deref().map(country).transpose()?,
            auto_parameters: options.auto_parameters,
            exact_match: options.exact_match,
        };
        request.check_combinations()?;
        Ok(request)
    }

    /// The rules that involve more than one option.
    fn check_combinations(&self) -> Result<(), InvalidInput> {
        if self.time_range.is_some() && (self.start_date.is_some() || self.end_date.is_some()) {
            return Err(InvalidInput::new(
                "time_range",
                "cannot be combined with start_date or end_date; use one or the other",
            ));
        }
        if let (Some(start), Some(end)) = (self.start_date, self.end_date)
            && start > end
        {
            return Err(InvalidInput::new(
                "start_date",
                format!("{start} is after end_date {end}"),
            ));
        }
        if self.chunks_per_source.is_some()
            && !matches!(self.depth, Some(SearchDepth::Advanced | SearchDepth::Fast))
        {
            return Err(InvalidInput::new(
                "chunks_per_source",
                "only applies with search_depth \"advanced\" or \"fast\"; set one of them or \
                 leave chunks_per_source out",
            ));
        }
        if self.include_image_descriptions && !self.include_images {
            return Err(InvalidInput::new(
                "include_image_descriptions",
                "only applies with include_images set to true",
            ));
        }
        if self.country.is_some() && self.topic.is_some_and(|t| t != Topic::General) {
            return Err(InvalidInput::new(
                "country",
                "only applies with topic \"general\"; leave country out for news or finance",
            ));
        }
        Ok(())
    }

    /// The same request with list options in a canonical order, for use as a cache key:
    /// requests that differ only in the order of their domains ask for the same thing.
    pub fn normalized(&self) -> Self {
        let mut normalized = self.clone();
        for list in [
            &mut normalized.include_domains,
            &mut normalized.exclude_domains,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        normalized
    }

    /// The trimmed query.
    pub fn query(&self) -> &Query {
        &self.query
    }

    /// How many results to return at most.
    pub fn max_results(&self) -> MaxResults {
        self.max_results
    }

    /// The effective search depth (`basic` unless set).
    pub fn depth(&self) -> SearchDepth {
        self.depth.unwrap_or(SearchDepth::Basic)
    }

    /// The search depth the caller asked for.
    pub fn requested_depth(&self) -> Option<SearchDepth> {
        self.depth
    }

    /// The effective topic (`general` unless set).
    pub fn topic(&self) -> Topic {
        self.topic.unwrap_or(Topic::General)
    }

    /// The topic the caller asked for.
    pub fn requested_topic(&self) -> Option<Topic> {
        self.topic
    }

    /// The time range, when restricted.
    pub fn time_range(&self) -> Option<TimeRange> {
        self.time_range
    }

    /// The earliest publication date, when restricted.
    pub fn start_date(&self) -> Option<Date> {
        self.start_date
    }

    /// The latest publication date, when restricted.
    pub fn end_date(&self) -> Option<Date> {
        self.end_date
    }

    /// Excerpts per page, when set.
    pub fn chunks_per_source(&self) -> Option<u16> {
        self.chunks_per_source
    }

    /// Whether (and how) to write an answer.
    pub fn include_answer(&self) -> Option<AnswerDepth> {
        self.include_answer
    }

    /// Whether (and in which format) to include each page's full text.
    pub fn include_raw_content(&self) -> Option<ContentFormat> {
        self.include_raw_content
    }

    /// Whether to include query-related images.
    pub fn include_images(&self) -> bool {
        self.include_images
    }

    /// Whether to describe each image.
    pub fn include_image_descriptions(&self) -> bool {
        self.include_image_descriptions
    }

    /// Whether to include favicons.
    pub fn include_favicon(&self) -> bool {
        self.include_favicon
    }

    /// Domains results must come from; empty means any.
    pub fn include_domains(&self) -> &[String] {
        &self.include_domains
    }

    /// Domains results must not come from.
    pub fn exclude_domains(&self) -> &[String] {
        &self.exclude_domains
    }

    /// The country to boost, lowercased.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// Whether the backend may choose parameters itself.
    pub fn auto_parameters(&self) -> bool {
        self.auto_parameters
    }

    /// Whether quoted phrases must match verbatim.
    pub fn exact_match(&self) -> bool {
        self.exact_match
    }
}

/// `value` as a count within `min..=max`, or an [`InvalidInput`] on `field` saying the range.
pub(crate) fn bounded_count(
    field: &'static str,
    value: i64,
    min: u16,
    max: u16,
) -> Result<u16, InvalidInput> {
    u16::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            InvalidInput::new(
                field,
                format!("must be between {min} and {max}; got {value}"),
            )
        })
}

/// A country's English name, trimmed and lowercased.
fn country(raw: &str) -> Result<String, InvalidInput> {
    let name = raw.trim().to_lowercase();
    let plain = !name.is_empty()
        && name.chars().count() <= SearchRequest::MAX_COUNTRY_CHARS
        && name
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'');
    if plain {
        Ok(name)
    } else {
        Err(InvalidInput::new(
            "country",
            "must be a country's English name, such as \"united states\" or \"germany\"",
        ))
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
    fn max_results_accepts_zero_to_twenty() {
        for (value, ok) in [
            (0, true),
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
            "invalid `max_results`: must be between 0 and 20; got 21"
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

    fn with_domains(include: &[&str], exclude: &[&str]) -> Result<SearchRequest, InvalidInput> {
        let list = |domains: &[&str]| domains.iter().map(|d| (*d).to_owned()).collect();
        SearchRequest::new(SearchOptions {
            include_domains: list(include),
            exclude_domains: list(exclude),
            ..SearchOptions::query("q")
        })
    }

    #[test]
    fn domains_are_normalized_and_bounded() {
        let request = with_domains(&["https://Docs.RS/", " *.gov "], &[]).expect("valid domains");
        assert_eq!(request.include_domains(), ["docs.rs", "*.gov"]);

        let too_many = vec!["a.com"; 151];
        let err = with_domains(&[], &too_many).unwrap_err();
        assert_eq!(err.field, "exclude_domains", "the limit names its field");
        assert!(with_domains(&too_many, &[]).is_ok(), "include allows 300");

        let spaced = with_domains(&["a b.com"], &[]);
        assert_eq!(spaced.unwrap_err().field, "include_domains");
        let empty = with_domains(&["https://"], &[]);
        assert!(empty.is_err(), "a bare scheme is an empty domain");
    }

    #[test]
    fn a_new_request_has_the_documented_defaults() {
        let request = SearchRequest::new(SearchOptions::query("rust async")).unwrap();
        assert_eq!(request.max_results().get(), 5);
        assert_eq!(request.depth(), SearchDepth::Basic);
        assert_eq!(request.topic(), Topic::General);
        assert_eq!(request.time_range(), None);
        assert!(request.include_domains().is_empty() && request.exclude_domains().is_empty());
    }

    #[test]
    fn dates_must_be_real_calendar_days() {
        for (raw, ok) in [
            ("2025-01-31", true),
            ("2024-02-29", true),
            ("2025-02-29", false),
            ("2025-13-01", false),
            ("2025-1-01", false),
            ("yesterday", false),
            ("2025-01-3x", false),
        ] {
            assert_eq!(Date::parse("start_date", raw).is_ok(), ok, "{raw}");
        }
        assert_eq!(
            Date::parse("end_date", "2025-03-04").unwrap().to_string(),
            "2025-03-04",
            "a date prints as it was written"
        );
    }

    #[test]
    fn options_that_conflict_are_refused_naming_the_option() {
        let date = |raw| Some(Date::parse("start_date", raw).unwrap());
        let q = || SearchOptions::query("q");
        let cases: Vec<(SearchOptions, &str, &str)> = vec![
            (
                SearchOptions {
                    time_range: Some(TimeRange::Week),
                    start_date: date("2025-01-01"),
                    ..q()
                },
                "time_range",
                "a range and dates together are ambiguous",
            ),
            (
                SearchOptions {
                    start_date: date("2025-02-01"),
                    end_date: date("2025-01-01"),
                    ..q()
                },
                "start_date",
                "start after end",
            ),
            (
                SearchOptions {
                    chunks_per_source: Some(2),
                    ..q()
                },
                "chunks_per_source",
                "chunks need advanced or fast depth",
            ),
            (
                SearchOptions {
                    include_image_descriptions: true,
                    ..q()
                },
                "include_image_descriptions",
                "descriptions need images",
            ),
            (
                SearchOptions {
                    topic: Some(Topic::News),
                    country: Some("france".into()),
                    ..q()
                },
                "country",
                "country is for the general topic",
            ),
        ];
        for (options, field, reason) in cases {
            assert_eq!(
                SearchRequest::new(options).unwrap_err().field,
                field,
                "{reason}"
            );
        }
        let fine = SearchRequest::new(SearchOptions {
            depth: Some(SearchDepth::Fast),
            chunks_per_source: Some(3),
            country: Some(" United States ".into()),
            include_images: true,
            include_image_descriptions: true,
            ..q()
        })
        .expect("compatible options");
        assert_eq!(
            fine.country(),
            Some("united states"),
            "countries are lowercased"
        );
        let advanced = |chunks| SearchOptions {
            depth: Some(SearchDepth::Advanced),
            chunks_per_source: Some(chunks),
            ..q()
        };
        assert!(SearchRequest::new(advanced(4)).is_err(), "at most 3 chunks");
        let country = SearchOptions {
            country: Some("us; drop".into()),
            ..q()
        };
        assert!(SearchRequest::new(country).is_err(), "names only");
    }

    #[test]
    fn the_normalized_request_ignores_domain_order_and_time_range_aliases_parse() {
        let a = with_domains(&["b.com", "a.com"], &[]).unwrap();
        let b = with_domains(&["a.com", "b.com", "a.com"], &[]).unwrap();
        assert_ne!(a, b, "the request keeps the caller's order");
        assert_eq!(a.normalized(), b.normalized(), "the cache key does not");
        assert_eq!("w".parse::<TimeRange>(), Ok(TimeRange::Week));
        assert_eq!(
            TimeRange::VALUES,
            ["day", "week", "month", "year"],
            "aliases are not listed"
        );
    }

    /// Properties over generated options: [`SearchRequest::new`] never panics, accepts exactly
    /// the options its documented rules allow, and names a documented field when it refuses.
    mod properties {
        use proptest::{collection, prelude::*};

        use super::*;

        // Most options are left out, as callers leave them, so that accepted requests are
        // common enough to check too.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,24}",
                "[ \t\n]{0,3}[a-z ]{0,8}[ \t\n]{0,3}",
                any::<String>(),
                (250..410usize, 0..3usize).prop_map(|(n, pad)| {
                    format!("{}{}{}", " ".repeat(pad), "q".repeat(n), "\t".repeat(pad))
                }),
            ]
        }

        fn domains(max: usize) -> impl Strategy<Value = Vec<String>> {
            let domain = prop_oneof![
                3 => "(https?://)?[a-zA-Z0-9.*-]{0,16}/{0,2}",
                1 => text(),
            ];
            prop_oneof![
                4 => collection::vec(domain, 0..4),
                1 => (max - 1..max + 2).prop_map(|n| vec!["example.com".to_owned(); n]),
            ]
        }

        fn closed<T: std::str::FromStr + std::fmt::Debug>(
            values: &'static [&'static str],
        ) -> impl Strategy<Value = Option<T>> {
            proptest::option::weighted(0.25, proptest::sample::select(values))
                .prop_map(|v| v.and_then(|v| v.parse().ok()))
        }

        fn date() -> impl Strategy<Value = Option<Date>> {
            (1890u16..2101, 0u8..14, 0u8..33).prop_map(|(y, m, d)| {
                Date::parse("start_date", &format!("{y:04}-{m:02}-{d:02}")).ok()
            })
        }

        fn count() -> impl Strategy<Value = Option<i64>> {
            proptest::option::weighted(0.25, prop_oneof![-2i64..25, any::<i64>()])
        }

        prop_compose! {
            fn options()(
                query in text(),
                (max_results, chunks_per_source) in (count(), count()),
                (depth, topic, time_range, include_answer, include_raw_content) in (
                    closed(SearchDepth::VALUES),
                    closed(Topic::VALUES),
                    closed(TimeRange::VALUES),
                    closed(AnswerDepth::VALUES),
                    closed(ContentFormat::VALUES),
                ),
                (start_date, end_date) in (proptest::option::weighted(0.25, date()), proptest::option::weighted(0.25, date())),
                flags in any::<[bool; 5]>(),
                include_domains in domains(SearchRequest::MAX_INCLUDE_DOMAINS),
                exclude_domains in domains(SearchRequest::MAX_EXCLUDE_DOMAINS),
                country in proptest::option::weighted(0.25, prop_oneof![
                    "[A-Za-z '-]{0,12}",
                    text(),
                    (58..63usize).prop_map(|n| "a".repeat(n)),
                ]),
            ) -> SearchOptions {
                let [include_images, include_image_descriptions, include_favicon, auto_parameters, exact_match] = flags;
                SearchOptions {
                    query, max_results, depth, topic, time_range,
                    start_date: start_date.flatten(), end_date: end_date.flatten(),
                    chunks_per_source, include_answer, include_raw_content, include_images,
                    include_image_descriptions, include_favicon, include_domains,
                    exclude_domains, country, auto_parameters, exact_match,
                }
            }
        }

        /// The rules as `SearchOptions` documents them, written out once more.
        fn allowed(o: &SearchOptions) -> bool {
            let query = o.query.trim().chars().count();
            let domains_ok = |list: &[String], max: usize| {
                list.len() <= max
                    && list.iter().all(|d| {
                        let d = d.trim();
                        let bare = d
                            .strip_prefix("https://")
                            .or_else(|| d.strip_prefix("http://"))
                            .unwrap_or(d)
                            .trim_end_matches('/');
                        !bare.is_empty()
                            && bare.chars().count() <= SearchRequest::MAX_DOMAIN_CHARS
                            && !bare.chars().any(char::is_whitespace)
                    })
            };
            let country_ok = o.country.as_deref().is_none_or(|c| {
                let name = c.trim().to_lowercase();
                !name.is_empty()
                    && name.chars().count() <= SearchRequest::MAX_COUNTRY_CHARS
                    && name.chars().all(|c| c.is_alphabetic() || " -'".contains(c))
                    && o.topic.is_none_or(|t| t == Topic::General)
            });
            (1..=Query::MAX_CHARS).contains(&query)
                && o.max_results.is_none_or(|n| (0..=20).contains(&n))
                && o.chunks_per_source.is_none_or(|n| {
                    (1..=3).contains(&n)
                        && matches!(o.depth, Some(SearchDepth::Advanced | SearchDepth::Fast))
                })
                && domains_ok(&o.include_domains, SearchRequest::MAX_INCLUDE_DOMAINS)
                && domains_ok(&o.exclude_domains, SearchRequest::MAX_EXCLUDE_DOMAINS)
                && country_ok
                && (o.time_range.is_none() || (o.start_date.is_none() && o.end_date.is_none()))
                && match (o.start_date, o.end_date) {
                    (Some(start), Some(end)) => start <= end,
                    _ => true,
                }
                && (o.include_images || !o.include_image_descriptions)
        }

        const FIELDS: &[&str] = &[
            "query",
            "max_results",
            "chunks_per_source",
            "include_domains",
            "exclude_domains",
            "country",
            "time_range",
            "start_date",
            "include_image_descriptions",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_request_is_built_exactly_when_the_rules_allow_it(options in options()) {
                let allowed = allowed(&options);
                match SearchRequest::new(options.clone()) {
                    Ok(request) => {
                        prop_assert!(allowed, "accepted against the rules: {:?}", options);
                        prop_assert_eq!(request.query().as_str(), options.query.trim());
                        prop_assert!(request.max_results().get() <= 20);
                        for domain in request.include_domains().iter().chain(request.exclude_domains()) {
                            prop_assert_eq!(domain, &domain.to_lowercase());
                        }
                        let normalized = request.normalized();
                        prop_assert_eq!(normalized.normalized(), normalized);
                    }
                    Err(refusal) => {
                        prop_assert!(!allowed, "refused within the rules: {}", refusal);
                        prop_assert!(FIELDS.contains(&refusal.field), "{}", refusal.field);
                        prop_assert!(
                            refusal.message.chars().count() <= 400,
                            "a refusal quotes a bounded part of the input"
                        );
                    }
                }
            }
        }
    }
}
