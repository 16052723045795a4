//! Status pages per audience: which page a request is for (its path `/p/NAME`, or `/` under
//! one of the page's hosts), who may read it, and which services it shows. Pure: the pages come
//! resolved from the config (tokens read, logos embedded).

/// One audience's status page, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudiencePage {
    pub name: String,
    pub title: String,
    /// The services shown, sorted.
    pub services: Vec<String>,
    /// Lower-case host names served this page at `/`.
    pub hosts: Vec<String>,
    /// The token that reads it; none: public.
    pub token: Option<String>,
    /// The logo as a `data:` URI.
    pub logo: Option<String>,
    pub footer: Vec<(String, String)>,
}

/// The page for a request to `path` with `host` (its `Host` header, port dropped): `/p/NAME`,
/// or `/` under one of a page's hosts.
pub fn page_for<'a>(pages: &'a [AudiencePage], path: &str, host: Option<&str>) -> Option<&'a AudiencePage> {
    if let Some(name) = path.strip_prefix("/p/") {
        return pages.iter().find(|p| p.name == name.trim_end_matches('/'));
    }
    if path == "/" {
        let host = host?;
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.parse::<u16>().is_ok() => h,
            _ => host,
        };
        let host = host.to_ascii_lowercase();
        return pages.iter().find(|p| p.hosts.contains(&host));
    }
    None
}

/// Whether `presented` (a Basic password or `?token=`) reads `page`.
pub fn may_read(page: &AudiencePage, presented: Option<&str>) -> bool {
    match &page.token {
        None => true,
        Some(t) => presented.is_some_and(|p| crate::core::ct::constant_time_eq(p.as_bytes(), t.as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str, hosts: &[&str], token: Option<&str>) -> AudiencePage {
        AudiencePage {
            name: name.into(),
            title: name.into(),
            services: vec!["shop".into()],
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            token: token.map(String::from),
            logo: None,
            footer: vec![],
        }
    }

    #[test]
    fn a_page_is_found_by_its_path_or_its_host() {
        let pages = [page("acme", &["status.acme.example"], None), page("globex", &[], None)];
        assert_eq!(page_for(&pages, "/p/acme", None).unwrap().name, "acme");
        assert_eq!(page_for(&pages, "/p/globex/", Some("vakt.example")).unwrap().name, "globex");
        assert_eq!(page_for(&pages, "/", Some("Status.Acme.Example:8443")).unwrap().name, "acme");
        assert!(page_for(&pages, "/", Some("vakt.example")).is_none(), "the collector's own page");
        assert!(page_for(&pages, "/p/initech", None).is_none());
        assert!(page_for(&pages, "/incidents", Some("status.acme.example")).is_none(), "only the page itself");
    }

    #[test]
    fn a_token_page_needs_its_token() {
        let p = page("acme", &[], Some("s3cret-token"));
        assert!(!may_read(&p, None) && !may_read(&p, Some("wrong")));
        assert!(may_read(&p, Some("s3cret-token")));
        assert!(may_read(&page("open", &[], None), None));
    }
}
