//! Which scopes each tool needs, which broader scopes imply narrower ones (MCP 2026-07-28:
//! servers MUST honour scope hierarchies), and what the protected-resource metadata advertises.

use std::collections::BTreeMap;

use super::ScopeSet;

/// Per-tool scope requirements and scope implications.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    tool_scopes: BTreeMap<String, Vec<String>>,
    implications: BTreeMap<String, Vec<String>>,
    supported: Vec<String>,
}

impl ScopePolicy {
    /// `tool_scopes` maps tool names to the scopes they need; `implications` maps a broader
    /// scope to the narrower ones it grants; `supported` is what the metadata advertises.
    pub fn new(
        tool_scopes: BTreeMap<String, Vec<String>>,
        implications: BTreeMap<String, Vec<String>>,
        supported: Vec<String>,
    ) -> Self {
        Self {
            tool_scopes,
            implications,
            supported,
        }
    }

    /// The scopes calling `tool` needs (none for tools without an entry).
    pub fn required_for_tool(&self, tool: &str) -> &[String] {
        self.tool_scopes.get(tool).map_or(&[], Vec::as_slice)
    }

    /// The scopes to advertise as `scopes_supported` and to name in 401 challenges.
    pub fn supported(&self) -> &[String] {
        &self.supported
    }

    /// `granted` plus every scope it implies, transitively.
    pub fn effective(&self, granted: &ScopeSet) -> ScopeSet {
        let mut effective = granted.clone();
        let mut pending: Vec<String> = granted.iter().map(str::to_owned).collect();
        while let Some(scope) = pending.pop() {
            for implied in self.implications.get(&scope).into_iter().flatten() {
                if effective.insert(implied.clone()) {
                    pending.push(implied.clone());
                }
            }
        }
        effective
    }

    /// Whether `granted` (with its implications) covers every scope in `required`.
    pub fn satisfies(&self, granted: &ScopeSet, required: &[String]) -> bool {
        if required.iter().all(|scope| granted.contains(scope)) {
            return true;
        }
        let effective = self.effective(granted);
        required.iter().all(|scope| effective.contains(scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ScopePolicy {
        ScopePolicy::new(
            BTreeMap::from([("web_search".into(), vec!["web-search:read".into()])]),
            BTreeMap::from([
                ("web-search:admin".into(), vec!["web-search:write".into()]),
                ("web-search:write".into(), vec!["web-search:read".into()]),
            ]),
            vec!["web-search:read".into()],
        )
    }

    #[test]
    fn tools_need_their_configured_scopes() {
        let policy = policy();
        assert_eq!(policy.required_for_tool("web_search"), ["web-search:read"]);
        assert!(
            policy.required_for_tool("other").is_empty(),
            "unlisted tools need nothing extra"
        );
    }

    #[test]
    fn broader_scopes_imply_narrower_ones_transitively() {
        let policy = policy();
        let required = ["web-search:read".to_owned()];
        assert!(policy.satisfies(
            &ScopeSet::from_space_separated("web-search:read"),
            &required
        ));
        assert!(
            policy.satisfies(
                &ScopeSet::from_space_separated("web-search:admin"),
                &required
            ),
            "admin → write → read"
        );
        assert!(!policy.satisfies(&ScopeSet::from_space_separated("openid profile"), &required));
        assert!(
            policy.satisfies(&ScopeSet::default(), &[]),
            "nothing required, nothing needed"
        );
    }

    #[test]
    fn implication_cycles_terminate() {
        let policy = ScopePolicy::new(
            BTreeMap::new(),
            BTreeMap::from([
                ("a".into(), vec!["b".into()]),
                ("b".into(), vec!["a".into()]),
            ]),
            Vec::new(),
        );
        let effective = policy.effective(&ScopeSet::from_space_separated("a"));
        assert!(effective.contains("b") && effective.contains("a"));
    }
}
