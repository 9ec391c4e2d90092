//! Country names as callers write them (`web_search`'s `country`: an English name, lowercased
//! by the domain, as Tavily takes it) turned into the ISO 3166-1 alpha-2 codes Brave and Exa
//! take. A name missing here is refused rather than guessed: a wrong code would boost another
//! country's pages without telling anyone.

/// English names (and common short forms) with their ISO 3166-1 alpha-2 codes.
const COUNTRIES: &[(&str, &str)] = &[
    ("afghanistan", "AF"),
    ("albania", "AL"),
    ("algeria", "DZ"),
    ("argentina", "AR"),
    ("armenia", "AM"),
    ("australia", "AU"),
    ("austria", "AT"),
    ("azerbaijan", "AZ"),
    ("bahrain", "BH"),
    ("bangladesh", "BD"),
    ("belarus", "BY"),
    ("belgium", "BE"),
    ("bolivia", "BO"),
    ("bosnia and herzegovina", "BA"),
    ("brazil", "BR"),
    ("bulgaria", "BG"),
    ("cambodia", "KH"),
    ("cameroon", "CM"),
    ("canada", "CA"),
    ("chile", "CL"),
    ("china", "CN"),
    ("colombia", "CO"),
    ("costa rica", "CR"),
    ("croatia", "HR"),
    ("cuba", "CU"),
    ("cyprus", "CY"),
    ("czech republic", "CZ"),
    ("czechia", "CZ"),
    ("denmark", "DK"),
    ("dominican republic", "DO"),
    ("ecuador", "EC"),
    ("egypt", "EG"),
    ("el salvador", "SV"),
    ("estonia", "EE"),
    ("ethiopia", "ET"),
    ("finland", "FI"),
    ("france", "FR"),
    ("georgia", "GE"),
    ("germany", "DE"),
    ("ghana", "GH"),
    ("greece", "GR"),
    ("guatemala", "GT"),
    ("honduras", "HN"),
    ("hong kong", "HK"),
    ("hungary", "HU"),
    ("iceland", "IS"),
    ("india", "IN"),
    ("indonesia", "ID"),
    ("iran", "IR"),
    ("iraq", "IQ"),
    ("ireland", "IE"),
    ("israel", "IL"),
    ("italy", "IT"),
    ("jamaica", "JM"),
    ("japan", "JP"),
    ("jordan", "JO"),
    ("kazakhstan", "KZ"),
    ("kenya", "KE"),
    ("kuwait", "KW"),
    ("latvia", "LV"),
    ("lebanon", "LB"),
    ("lithuania", "LT"),
    ("luxembourg", "LU"),
    ("malaysia", "MY"),
    ("malta", "MT"),
    ("mexico", "MX"),
    ("moldova", "MD"),
    ("mongolia", "MN"),
    ("montenegro", "ME"),
    ("morocco", "MA"),
    ("myanmar", "MM"),
    ("nepal", "NP"),
    ("netherlands", "NL"),
    ("new zealand", "NZ"),
    ("nicaragua", "NI"),
    ("nigeria", "NG"),
    ("north macedonia", "MK"),
    ("norway", "NO"),
    ("oman", "OM"),
    ("pakistan", "PK"),
    ("panama", "PA"),
    ("paraguay", "PY"),
    ("peru", "PE"),
    ("philippines", "PH"),
    ("poland", "PL"),
    ("portugal", "PT"),
    ("qatar", "QA"),
    ("romania", "RO"),
    ("russia", "RU"),
    ("saudi arabia", "SA"),
    ("senegal", "SN"),
    ("serbia", "RS"),
    ("singapore", "SG"),
    ("slovakia", "SK"),
    ("slovenia", "SI"),
    ("south africa", "ZA"),
    ("south korea", "KR"),
    ("korea", "KR"),
    ("spain", "ES"),
    ("sri lanka", "LK"),
    ("sweden", "SE"),
    ("switzerland", "CH"),
    ("taiwan", "TW"),
    ("tanzania", "TZ"),
    ("thailand", "TH"),
    ("tunisia", "TN"),
    ("turkey", "TR"),
    ("turkiye", "TR"),
    ("türkiye", "TR"),
    ("uganda", "UG"),
    ("ukraine", "UA"),
    ("united arab emirates", "AE"),
    ("uae", "AE"),
    ("united kingdom", "GB"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("usa", "US"),
    ("us", "US"),
    ("uruguay", "UY"),
    ("uzbekistan", "UZ"),
    ("venezuela", "VE"),
    ("vietnam", "VN"),
    ("viet nam", "VN"),
    ("zimbabwe", "ZW"),
];

/// The ISO 3166-1 alpha-2 code of `name` (the domain's lowercased English name).
pub(super) fn iso_code(name: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_names_and_short_forms_have_their_codes() {
        let cases = [
            ("united states", Some("US")),
            ("usa", Some("US")),
            ("united kingdom", Some("GB")),
            ("germany", Some("DE")),
            ("south korea", Some("KR")),
            ("narnia", None),
            ("United States", None),
        ];
        for (name, code) in cases {
            assert_eq!(iso_code(name), code, "{name} (the domain lowercases names)");
        }
    }

    #[test]
    fn every_code_is_two_upper_case_letters_and_every_name_is_listed_once() {
        for (name, code) in COUNTRIES {
            assert!(
                code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()),
                "{name}: {code}"
            );
            assert_eq!(name.to_lowercase(), *name, "names are matched lowercased");
        }
        let mut names: Vec<_> = COUNTRIES.iter().map(|(n, _)| n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNTRIES.len());
    }
}
