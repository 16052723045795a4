//! Text made safe inside HTML (pages, mail, reports): the five characters that could open
//! markup or end an attribute, escaped.

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_attributes_cannot_be_opened() {
        assert_eq!(super::escape("<b onclick='x'>\"&"), "&lt;b onclick=&#39;x&#39;&gt;&quot;&amp;");
    }
}
