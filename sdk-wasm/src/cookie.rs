//! The device cookie: a first-party cookie on the registrable domain, so
//! `shop.example.com` and `www.example.com` share one device id. The core
//! decides when it is written (creation, rotation, consent change, renewal);
//! this module only knows how to read, write and delete it.
//!
//! The domain is found the way Google Analytics and Adobe do it: set a probe
//! cookie on successively longer suffixes of `location.hostname`, starting
//! from the last two labels, and keep the first the browser accepts (it
//! refuses public suffixes such as `co.uk`). IP addresses and single-label
//! hosts such as `localhost` get a host-only cookie. The probe runs once, the
//! first time the cookie is written, never before consent.

use wasm_bindgen::JsCast;
use web_sys::HtmlDocument;

use crate::browser::window;

fn document() -> Option<HtmlDocument> {
    window()?.document()?.dyn_into::<HtmlDocument>().ok()
}

/// The value of cookie `name` as the page sees it now.
pub fn read(name: &str) -> Option<String> {
    let all = document()?.cookie().ok()?;
    all.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn set(line: &str) {
    if let Some(d) = document() {
        let _ = d.set_cookie(line);
    }
}

fn location() -> (String, bool) {
    let Some(loc) = window().map(|w| w.location()) else { return (String::new(), false) };
    let host = loc.hostname().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    (host, loc.protocol().is_ok_and(|p| p == "https:"))
}

/// The suffixes of `host` that may carry a domain cookie, shortest first;
/// none for an IP address or a single-label host.
fn suffixes(host: &str) -> Vec<&str> {
    let ip =
        host.contains(':') || host.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()));
    if ip || !host.contains('.') {
        return Vec::new();
    }
    let mut out: Vec<&str> =
        host.char_indices().filter(|(_, c)| *c == '.').filter_map(|(i, _)| host.get(i + 1..)).collect();
    out.pop(); // the last label alone (a TLD) never takes cookies
    out.reverse();
    out.push(host);
    out
}

pub struct Cookie {
    name: String,
    /// `"auto"` or an explicit domain.
    domain: String,
    /// The `Domain=` attribute once known: `Some(None)` is host-only.
    resolved: Option<Option<String>>,
}

impl Cookie {
    pub fn new(name: String, domain: String) -> Cookie {
        Cookie { name, domain, resolved: None }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn attributes(domain: Option<&str>, secure: bool) -> String {
        let mut a = String::from("; Path=/; SameSite=Lax");
        if let Some(d) = domain {
            a.push_str("; Domain=");
            a.push_str(d);
        }
        if secure {
            a.push_str("; Secure");
        }
        a
    }

    fn domain(&mut self, host: &str, secure: bool) -> Option<String> {
        if let Some(d) = &self.resolved {
            return d.clone();
        }
        let found = if self.domain != "auto" {
            Some(self.domain.trim_start_matches('.').to_owned()).filter(|d| !d.is_empty())
        } else {
            let probe = format!("{}_probe", self.name);
            suffixes(host)
                .into_iter()
                .find(|d| {
                    let attrs = Cookie::attributes(Some(d), secure);
                    set(&format!("{probe}=1{attrs}"));
                    let accepted = read(&probe).is_some();
                    if accepted {
                        set(&format!("{probe}=; Max-Age=0{attrs}"));
                    }
                    accepted
                })
                .map(str::to_owned)
        };
        self.resolved = Some(found.clone());
        found
    }

    /// Writes `value` for `max_age_s` seconds; true when the browser kept it.
    pub fn write(&mut self, value: &str, max_age_s: u64) -> bool {
        if max_age_s == 0 {
            self.remove();
            return false;
        }
        let (host, secure) = location();
        let domain = self.domain(&host, secure);
        let attrs = Cookie::attributes(domain.as_deref(), secure);
        set(&format!("{}={value}; Max-Age={max_age_s}{attrs}", self.name));
        read(&self.name).as_deref() == Some(value)
    }

    /// Deletes the cookie wherever this SDK may have set it: host-only, on
    /// the configured domain, and on every parent domain (another subdomain
    /// of the site may have written it with a different configuration).
    pub fn remove(&mut self) {
        if read(&self.name).is_none() {
            return;
        }
        let (host, secure) = location();
        let mut domains: Vec<Option<&str>> = vec![None];
        domains.extend(suffixes(&host).into_iter().map(Some));
        let explicit = (self.domain != "auto").then(|| self.domain.clone());
        domains.extend(explicit.as_deref().map(Some));
        for d in domains {
            set(&format!("{}=; Max-Age=0{}", self.name, Cookie::attributes(d, secure)));
            if read(&self.name).is_none() {
                break;
            }
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::suffixes;

    #[test]
    fn candidate_domains() {
        assert_eq!(
            suffixes("www.shop.example.co.uk"),
            ["co.uk", "example.co.uk", "shop.example.co.uk", "www.shop.example.co.uk"]
        );
        assert_eq!(suffixes("example.test"), ["example.test"]);
        assert!(suffixes("localhost").is_empty());
        assert!(suffixes("127.0.0.1").is_empty());
        assert!(suffixes("[::1]").is_empty());
    }
}
