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

    /// A request for `query` with every option at its default.
    ///
    /// # Errors
    /// [`InvalidInput`] when the query breaks [`Query::parse`]'s rules.
    pub fn new(query: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            query: Query::parse(query)?,
            max_results: MaxResults::DEFAULT,
            depth: None,
            topic: None,
            time_range: None,
            start_date: None,
            end_date: None,
            chunks_per_source: None,
            include_answer: None,
            include_raw_content: None,
            include_images: false,
            include_image_descriptions: false,
            include_favicon: false,
            include_domains: Vec::new(),
            exclude_domains: Vec::new(),
            country: None,
            auto_parameters: false,
            exact_match: false,
        })
    }

    /// Sets how many results to return.
    ///
    /// # Errors
    /// [`InvalidInput`] on `max_results` outside 0–20.
    pub fn with_max_results(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.max_results = MaxResults::parse(value)?;
        Ok(self)
    }

    /// Sets the search depth.
    pub fn with_depth(mut self, depth: SearchDepth) -> Self {
        self.depth = Some(depth);
        self
    }

    /// Sets the topic.
    pub fn with_topic(mut self, topic: Topic) -> Self {
        self.topic = Some(topic);
        self
    }

    /// Restricts results to a recent time range.
    pub fn with_time_range(mut self, time_range: TimeRange) -> Self {
        self.time_range = Some(time_range);
        self
    }

    /// Only returns pages published on or after this date.
    pub fn with_start_date(mut self, date: Date) -> Self {
        self.start_date = Some(date);
        self
    }

    /// Only returns pages published on or before this date.
    pub fn with_end_date(mut self, date: Date) -> Self {
        self.end_date = Some(date);
        self
    }

    /// How many excerpts per page (1–3; `advanced` and `fast` depth only).
    ///
    /// # Errors
    /// [`InvalidInput`] on `chunks_per_source` outside 1–3.
    pub fn with_chunks_per_source(mut self, value: i64) -> Result<Self, InvalidInput> {
        self.chunks_per_source = Some(bounded_count("chunks_per_source", value, 1, 3)?);
        Ok(self)
    }

    /// Asks for an answer written from the results.
    pub fn with_answer(mut self, depth: AnswerDepth) -> Self {
        self.include_answer = Some(depth);
        self
    }

    /// Asks for each page's full text in this format.
    pub fn with_raw_content(mut self, format: ContentFormat) -> Self {
        self.include_raw_content = Some(format);
        self
    }

    /// Asks for images related to the query (and, with `descriptions`, a description of each).
    pub fn with_images(mut self, images: bool, descriptions: bool) -> Self {
        self.include_images = images;
        self.include_image_descriptions = descriptions;
        self
    }

    /// Asks for each result's favicon URL.
    pub fn with_favicon(mut self, favicon: bool) -> Self {
        self.include_favicon = favicon;
        self
    }

    /// Lets the backend choose topic, depth and time range from the query.
    pub fn with_auto_parameters(mut self, auto: bool) -> Self {
        self.auto_parameters = auto;
        self
    }

    /// Only returns pages that contain the quoted phrases of the query verbatim.
    pub fn with_exact_match(mut self, exact: bool) -> Self {
        self.exact_match = exact;
        self
    }

    /// Boosts results from a country, such as `united states` (general topic only).
    ///
    /// # Errors
    /// [`InvalidInput`] on `country` when it is empty, too long or not a plain name.
    pub fn with_country(mut self, country: &str) -> Result<Self, InvalidInput> {
        let name = country.trim().to_lowercase();
        let plain = !name.is_empty()
            && name.chars().count() <= Self::MAX_COUNTRY_CHARS
            && name
                .chars()
                .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'');
        if !plain {
            return Err(InvalidInput::new(
                "country",
                "must be a country's English name, such as \"united states\" or \"germany\"",
            ));
        }
        self.country = Some(name);
        Ok(self)
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

    /// Checks the rules that involve more than one option; call it once every option is set.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the option that conflicts with another.
    pub fn checked(self) -> Result<Self, InvalidInput> {
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
        Ok(self)
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
        let base = || SearchRequest::new("q").unwrap();
        let date = |raw| Date::parse("start_date", raw).unwrap();
        let cases: Vec<(SearchRequest, &str, &str)> = vec![
            (
                base()
                    .with_time_range(TimeRange::Week)
                    .with_start_date(date("2025-01-01")),
                "time_range",
                "a range and dates together are ambiguous",
            ),
            (
                base()
                    .with_start_date(date("2025-02-01"))
                    .with_end_date(date("2025-01-01")),
                "start_date",
                "start after end",
            ),
            (
                base().with_chunks_per_source(2).unwrap(),
                "chunks_per_source",
                "chunks need advanced or fast depth",
            ),
            (
                base().with_images(false, true),
                "include_image_descriptions",
                "descriptions need images",
            ),
            (
                base()
                    .with_topic(Topic::News)
                    .with_country("france")
                    .unwrap(),
                "country",
                "country is for the general topic",
            ),
        ];
        for (request, field, reason) in cases {
            assert_eq!(request.checked().unwrap_err().field, field, "{reason}");
        }
        let fine = base()
            .with_depth(SearchDepth::Fast)
            .with_chunks_per_source(3)
            .unwrap()
            .with_country(" United States ")
            .unwrap()
            .with_images(true, true)
            .checked()
            .expect("compatible options");
        assert_eq!(
            fine.country(),
            Some("united states"),
            "countries are lowercased"
        );
        assert!(
            base().with_chunks_per_source(4).is_err(),
            "at most 3 chunks"
        );
        assert!(base().with_country("us; drop").is_err(), "names only");
    }

    #[test]
    fn the_normalized_request_ignores_domain_order_and_time_range_aliases_parse() {
        let a = SearchRequest::new("q")
            .unwrap()
            .with_include_domains(&["b.com".into(), "a.com".into()])
            .unwrap();
        let b = SearchRequest::new("q")
            .unwrap()
            .with_include_domains(&["a.com".into(), "b.com".into(), "a.com".into()])
            .unwrap();
        assert_ne!(a, b, "the request keeps the caller's order");
        assert_eq!(a.normalized(), b.normalized(), "the cache key does not");
        assert_eq!("w".parse::<TimeRange>(), Ok(TimeRange::Week));
        assert_eq!(
            TimeRange::VALUES,
            ["day", "week", "month", "year"],
            "aliases are not listed"
        );
    }
}
