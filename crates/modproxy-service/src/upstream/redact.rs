//! Credentials kept out of names, messages and logs.

/// `scheme://user:password@host…` with the credentials hidden.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(['/', ',', '|', ' ']).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact("http://u:p@proxy:3128/x,https://token@host|direct"),
            "http://***@proxy:3128/x,https://***@host|direct"
        );
        assert_eq!(
            redact("https://proxy.golang.org,direct"),
            "https://proxy.golang.org,direct"
        );
    }
}
