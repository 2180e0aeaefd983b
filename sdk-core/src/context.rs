//! The `context` every event carries: which SDK, which page or app, which
//! locale, which campaign brought the person here. It changes rarely (a page
//! view, a locale switch) and is attached to every event, so it is serialised
//! once per change and copied into each event as ready JSON.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::Library;
use crate::consent::Consent;
use crate::event::empty_object;

/// The page an event happened on, as the browser reports it. Fields are
/// optional because the core also runs where there is no page (apps).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Page {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The query string including its leading `?`, as `location.search`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

/// Facts about the runtime that the binding reads once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Environment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// UTM parameters, named as Segment's `context.campaign` names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Campaign {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Campaign {
    /// Reads `utm_*` parameters from a query string (with or without `?`),
    /// percent- and plus-decoded. The first occurrence of a parameter wins.
    pub fn from_query(search: &str) -> Option<Campaign> {
        let q = search.strip_prefix('?').unwrap_or(search);
        let q = q.split('#').next().unwrap_or_default();
        let mut c = Campaign::default();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            let slot = match k.as_ref() {
                "utm_campaign" => &mut c.name,
                "utm_source" => &mut c.source,
                "utm_medium" => &mut c.medium,
                "utm_term" => &mut c.term,
                "utm_content" => &mut c.content,
                _ => continue,
            };
            if slot.is_none() && !v.is_empty() {
                *slot = Some(v.into_owned());
            }
        }
        (c != Campaign::default()).then_some(c)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    library: &'a Library,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a Page>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<&'a Campaign>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent: Option<&'a Consent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    session_start: bool,
}

/// The current context and its cached JSON form.
#[derive(Debug, Clone)]
pub struct Context {
    library: Library,
    env: Environment,
    page: Option<Page>,
    campaign: Option<Campaign>,
    consent: Option<Consent>,
    session: Option<(u64, bool)>,
    json: Box<RawValue>,
}

impl Context {
    pub fn new(library: Library) -> Self {
        let mut c = Context {
            library,
            env: Environment::default(),
            page: None,
            campaign: None,
            consent: None,
            session: None,
            json: empty_object(),
        };
        c.rebuild();
        c
    }

    pub fn set_environment(&mut self, env: Environment) {
        if self.env != env {
            self.env = env;
            self.rebuild();
        }
    }

    /// A new page also renews the campaign: UTM parameters describe how the
    /// person reached this page, and are kept while later pages lack them,
    /// as analytics.js does within a page session.
    pub fn set_page(&mut self, page: Page) {
        if self.page.as_ref() == Some(&page) {
            return;
        }
        if let Some(c) = page.search.as_deref().and_then(Campaign::from_query) {
            self.campaign = Some(c);
        }
        self.page = Some(page);
        self.rebuild();
    }

    /// The consent events are collected under (`context.consent`).
    pub fn set_consent(&mut self, consent: Consent) {
        if self.consent != Some(consent) {
            self.consent = Some(consent);
            self.rebuild();
        }
    }

    /// The session (`context.sessionId`), and whether the next event is its
    /// first (`context.sessionStart: true`).
    pub fn set_session(&mut self, session: Option<(u64, bool)>) {
        if self.session != session {
            self.session = session;
            self.rebuild();
        }
    }

    pub fn page(&self) -> Option<&Page> {
        self.page.as_ref()
    }

    pub fn campaign(&self) -> Option<&Campaign> {
        self.campaign.as_ref()
    }

    pub fn json(&self) -> &RawValue {
        &self.json
    }

    fn rebuild(&mut self) {
        let wire = Wire {
            library: &self.library,
            locale: self.env.locale.as_deref(),
            timezone: self.env.timezone.as_deref(),
            user_agent: self.env.user_agent.as_deref(),
            page: self.page.as_ref(),
            campaign: self.campaign.as_ref(),
            consent: self.consent.as_ref(),
            session_id: self.session.map(|s| s.0),
            session_start: self.session.is_some_and(|s| s.1),
        };
        // Serialising plain strings cannot fail; keep the previous JSON if it
        // somehow did rather than panic.
        if let Ok(s) = serde_json::to_string(&wire) {
            if let Ok(raw) = RawValue::from_string(s) {
                self.json = raw;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utm_parameters() {
        let c = Campaign::from_query(
            "?utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&x=1&utm_source=other#frag",
        )
        .unwrap();
        assert_eq!(c.source.as_deref(), Some("news letter"));
        assert_eq!(c.medium.as_deref(), Some("email"));
        assert_eq!(c.name.as_deref(), Some("spring sale"));
        assert_eq!(c.term, None);
        assert_eq!(Campaign::from_query("?q=slacks"), None);
        assert_eq!(Campaign::from_query(""), None);
        assert_eq!(
            Campaign::from_query("utm_term=%E2%82%AC&utm_content=%ZZ").unwrap().term.as_deref(),
            Some("€")
        );
    }

    #[test]
    fn context_json_follows_changes() {
        let mut c = Context::new(Library { name: "threadline-web".into(), version: "1.0.0".into() });
        assert_eq!(c.json().get(), r#"{"library":{"name":"threadline-web","version":"1.0.0"}}"#);
        c.set_environment(Environment {
            locale: Some("de-DE".into()),
            timezone: Some("Europe/Berlin".into()),
            user_agent: None,
        });
        c.set_page(Page {
            url: Some("https://shop.example/p/slacks?utm_source=ad".into()),
            path: Some("/p/slacks".into()),
            search: Some("?utm_source=ad".into()),
            ..Page::default()
        });
        let v: serde_json::Value = serde_json::from_str(c.json().get()).unwrap();
        assert_eq!(v["locale"], "de-DE");
        assert_eq!(v["page"]["path"], "/p/slacks");
        assert_eq!(v["campaign"]["source"], "ad");
        // The campaign survives a later page without UTM parameters.
        c.set_page(Page { path: Some("/cart".into()), ..Page::default() });
        let v: serde_json::Value = serde_json::from_str(c.json().get()).unwrap();
        assert_eq!(v["page"]["path"], "/cart");
        assert_eq!(v["campaign"]["source"], "ad");
    }
}
