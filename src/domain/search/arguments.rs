//! The optional `web_search` arguments as a closed set, so a backend can say which it honours
//! and the core can say, in one place, which of a caller's arguments the answering backend
//! could not honour (never dropping one silently).

use super::SearchRequest;

/// One optional argument of a search (the query is not optional and every backend takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SearchArgument {
    /// `max_results`.
    MaxResults,
    /// `search_depth`.
    SearchDepth,
    /// `topic`.
    Topic,
    /// `time_range`.
    TimeRange,
    /// `start_date`.
    StartDate,
    /// `end_date`.
    EndDate,
    /// `chunks_per_source`.
    ChunksPerSource,
    /// `include_answer`.
    IncludeAnswer,
    /// `include_raw_content`.
    IncludeRawContent,
    /// `include_images`.
    IncludeImages,
    /// `include_image_descriptions`.
    IncludeImageDescriptions,
    /// `include_favicon`.
    IncludeFavicon,
    /// `include_domains`.
    IncludeDomains,
    /// `exclude_domains`.
    ExcludeDomains,
    /// `country`.
    Country,
    /// `auto_parameters`.
    AutoParameters,
    /// `exact_match`.
    ExactMatch,
}

impl SearchArgument {
    /// Every argument, in the order the tool's schema lists them.
    pub const ALL: [Self; 17] = [
        Self::MaxResults,
        Self::SearchDepth,
        Self::Topic,
        Self::TimeRange,
        Self::StartDate,
        Self::EndDate,
        Self::ChunksPerSource,
        Self::IncludeAnswer,
        Self::IncludeRawContent,
        Self::IncludeImages,
        Self::IncludeImageDescriptions,
        Self::IncludeFavicon,
        Self::IncludeDomains,
        Self::ExcludeDomains,
        Self::Country,
        Self::AutoParameters,
        Self::ExactMatch,
    ];

    /// The argument's name as callers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxResults => "max_results",
            Self::SearchDepth => "search_depth",
            Self::Topic => "topic",
            Self::TimeRange => "time_range",
            Self::StartDate => "start_date",
            Self::EndDate => "end_date",
            Self::ChunksPerSource => "chunks_per_source",
            Self::IncludeAnswer => "include_answer",
            Self::IncludeRawContent => "include_raw_content",
            Self::IncludeImages => "include_images",
            Self::IncludeImageDescriptions => "include_image_descriptions",
            Self::IncludeFavicon => "include_favicon",
            Self::IncludeDomains => "include_domains",
            Self::ExcludeDomains => "exclude_domains",
            Self::Country => "country",
            Self::AutoParameters => "auto_parameters",
            Self::ExactMatch => "exact_match",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u8
    }
}

impl std::fmt::Display for SearchArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`SearchArgument`]s: those a backend honours, or those a request sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SearchArguments(u32);

impl SearchArguments {
    /// No argument.
    pub const NONE: Self = Self(0);
    /// Every argument.
    pub const ALL: Self = Self::of(&SearchArgument::ALL);

    /// The set holding `arguments`.
    pub const fn of(arguments: &[SearchArgument]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < arguments.len() {
            bits |= arguments[i].bit();
            i += 1;
        }
        Self(bits)
    }

    /// Whether `argument` is in the set.
    pub fn contains(self, argument: SearchArgument) -> bool {
        self.0 & argument.bit() != 0
    }

    /// The arguments of this set that are not in `other`.
    pub fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The arguments, in schema order.
    pub fn iter(self) -> impl Iterator<Item = SearchArgument> {
        SearchArgument::ALL
            .into_iter()
            .filter(move |argument| self.contains(*argument))
    }

    /// The same set with `argument` added.
    fn with(self, argument: SearchArgument, present: bool) -> Self {
        if present {
            Self(self.0 | argument.bit())
        } else {
            self
        }
    }
}

impl SearchRequest {
    /// The optional arguments this request sets (an argument left at its default is not set;
    /// `max_results` counts as set only when it differs from the default).
    pub fn arguments(&self) -> SearchArguments {
        use SearchArgument as A;
        SearchArguments::NONE
            .with(
                A::MaxResults,
                self.max_results() != super::MaxResults::DEFAULT,
            )
            .with(A::SearchDepth, self.requested_depth().is_some())
            .with(A::Topic, self.requested_topic().is_some())
            .with(A::TimeRange, self.time_range().is_some())
            .with(A::StartDate, self.start_date().is_some())
            .with(A::EndDate, self.end_date().is_some())
            .with(A::ChunksPerSource, self.chunks_per_source().is_some())
            .with(A::IncludeAnswer, self.include_answer().is_some())
            .with(A::IncludeRawContent, self.include_raw_content().is_some())
            .with(A::IncludeImages, self.include_images())
            .with(
                A::IncludeImageDescriptions,
                self.include_image_descriptions(),
            )
            .with(A::IncludeFavicon, self.include_favicon())
            .with(A::IncludeDomains, !self.include_domains().is_empty())
            .with(A::ExcludeDomains, !self.exclude_domains().is_empty())
            .with(A::Country, self.country().is_some())
            .with(A::AutoParameters, self.auto_parameters())
            .with(A::ExactMatch, self.exact_match())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{SearchOptions, Topic};

    #[test]
    fn a_request_lists_exactly_the_arguments_it_sets() {
        let plain = SearchRequest::new(SearchOptions::query("q")).unwrap();
        assert!(plain.arguments().is_empty());
        let set = SearchRequest::new(SearchOptions {
            max_results: Some(9),
            topic: Some(Topic::News),
            include_domains: vec!["a.com".into()],
            exact_match: true,
            ..SearchOptions::query("q")
        })
        .unwrap();
        let names: Vec<&str> = set.arguments().iter().map(SearchArgument::as_str).collect();
        assert_eq!(
            names,
            ["max_results", "topic", "include_domains", "exact_match"]
        );
    }

    #[test]
    fn sets_subtract_and_hold_every_argument() {
        let honoured = SearchArguments::of(&[SearchArgument::Topic, SearchArgument::Country]);
        let asked = SearchArguments::of(&[SearchArgument::Topic, SearchArgument::ExactMatch]);
        assert_eq!(
            asked.without(honoured).iter().collect::<Vec<_>>(),
            [SearchArgument::ExactMatch]
        );
        assert_eq!(
            SearchArguments::ALL.iter().count(),
            SearchArgument::ALL.len()
        );
        let mut names: Vec<_> = SearchArgument::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SearchArgument::ALL.len(), "names are distinct");
    }
}
