//! The default layout's templates as `build.rs` parsed them, so that a run drawing with the
//! built-in layout does not parse them again: Handlebars' parser cost about a third of the
//! instructions of a whole `bulletin render`.
//!
//! A template is taken from here only when the source to register is, byte for byte, the
//! text `build.rs` parsed; anything else (a layout's own files, a template whose literal
//! images or merge fields changed its text) is parsed at run time as before. The footers'
//! unsubscribe link, the built-in layout's one merge field, is marked the same in every
//! issue ([`crate::merge::FieldTable::unsubscribe_first`]): they come parsed with it.
//! Knows nothing of layouts or issues: it answers for a template's source.

include!(concat!(env!("OUT_DIR"), "/parsed_templates.rs"));

/// `source` parsed, named `name`, if it is a text `build.rs` parsed.
pub(super) fn parsed(name: &str, source: &str) -> Option<handlebars::Template> {
    let (_, bytes) = PARSED.iter().find(|(text, _)| *text == source)?;
    let mut template: handlebars::Template = postcard::from_bytes(bytes).ok()?;
    template.name = Some(name.to_string());
    Some(template)
}

#[cfg(test)]
mod tests {
    use handlebars::Handlebars;

    use super::*;
    use crate::layout::Layout;
    use crate::merge::FieldTable;

    /// What the run takes from here is what parsing the text would give, for every template
    /// of the built-in layout, names, lines and columns included.
    #[test]
    fn every_built_in_template_comes_parsed_as_parsing_it_gives() {
        let layout = Layout::builtin().unwrap();
        let mut seen = 0;
        for template in layout.templates() {
            let mut registry = Handlebars::new();
            registry.set_prevent_indent(true);
            registry
                .register_template_string(&template.name, &template.source)
                .unwrap();
            let parsed = parsed(&template.name, &template.source)
                .unwrap_or_else(|| panic!("{} is not among the parsed", template.name));
            assert_eq!(Some(&parsed), registry.get_template(&template.name));
            seen += 1;
        }
        // And the footers as `render` registers them, their unsubscribe link marked.
        for template in layout.templates() {
            let marked = FieldTable::unsubscribe_first().mark_template(&template.source);
            if marked == template.source {
                continue;
            }
            let mut registry = Handlebars::new();
            registry.set_prevent_indent(true);
            registry
                .register_template_string(&template.name, &marked)
                .unwrap();
            let parsed = parsed(&template.name, &marked)
                .unwrap_or_else(|| panic!("{} marked is not among the parsed", template.name));
            assert_eq!(Some(&parsed), registry.get_template(&template.name));
            seen += 1;
        }
        assert_eq!(seen, PARSED.len());
    }

    /// build.rs marks the unsubscribe link with the marker the table gives it.
    #[test]
    fn the_unsubscribe_link_is_marked_as_build_rs_marks_it() {
        assert_eq!(
            FieldTable::unsubscribe_first().mark_template("{{unsubscribe_url}}"),
            crate::merge::UNSUBSCRIBE_MARKER
        );
        let mut table = FieldTable::unsubscribe_first();
        table.mark("{{subscriber.first_name}} {{subscriber.city | default: \"x\"}}");
        assert_eq!(
            table.mark_template("<a href=\"{{unsubscribe_url}}\">"),
            format!("<a href=\"{}\">", crate::merge::UNSUBSCRIBE_MARKER),
            "the issue's own fields come after it"
        );
    }

    /// A text that differs by one character is parsed at run time.
    #[test]
    fn a_changed_text_is_not_taken() {
        let (source, _) = PARSED[0];
        assert!(parsed("t", source).is_some());
        assert!(parsed("t", &format!("{source} ")).is_none());
        assert!(parsed("t", "{{title}}").is_none());
    }
}
