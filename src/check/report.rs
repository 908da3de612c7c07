//! What a whole check found, as `bulletin check` tells it: the findings in the order shown,
//! how many there are of each severity and how many links were asked, whether the check
//! fails, and the warning about images not yet on the site. Decides and words; prints
//! nothing (the command does).

use std::path::Path;

use super::{Finding, Severity, counts, sort};
use crate::edition::Edition;
use crate::issue::Problem;

/// Everything one check found.
#[derive(Debug)]
pub struct Report {
    findings: Vec<Finding>,
    links_checked: Option<usize>,
    errors: usize,
    warnings: usize,
}

impl Report {
    /// The findings of a check, sorted as [`sort`] shows them; `links_checked` is `None`
    /// when links were not asked (`--offline`, or an issue that did not render).
    pub fn new(mut findings: Vec<Finding>, links_checked: Option<usize>) -> Report {
        sort(&mut findings);
        let (errors, warnings) = counts(&findings);
        Report {
            findings,
            links_checked,
            errors,
            warnings,
        }
    }

    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether the check fails: on any error, and with `strict` on any warning too.
    pub fn fails(&self, strict: bool) -> bool {
        self.errors > 0 || (strict && self.warnings > 0)
    }

    /// The last line: "2 errors, 1 warning (37 links checked)".
    pub fn summary(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let found = if self.errors + self.warnings == 0 {
            "no problems found".to_string()
        } else {
            format!(
                "{}, {}",
                plural(self.errors, "error"),
                plural(self.warnings, "warning")
            )
        };
        let links = match self.links_checked {
            Some(n) => format!(" ({} checked)", plural(n, "link")),
            None => " (links not checked)".to_string(),
        };
        format!("{found}{links}\n")
    }
}

/// A warning when the email reads its images from the issue's page on the site (`[archive]`,
/// no `images_url` of its own) and the local site folder `site` does not have `missing` yet
/// (as `publish::unpublished_images` finds them). `offline`: links were not asked, so the
/// site was not asked either.
pub fn unpublished(
    edition: &Edition,
    missing: &[String],
    site: &Path,
    base_url: &str,
    offline: bool,
) -> Option<Finding> {
    let first = missing.first()?;
    let more = match missing.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    let folder = site.join(&edition.issue.slug);
    let online = if offline {
        "with --offline, check did not ask the site whether they are online"
    } else {
        "check also asked the site for each one: an image that is not online yet is an error above"
    };
    Some(Finding {
        severity: Severity::Warning,
        problem: Problem {
            file: edition.issue.path.clone(),
            position: None,
            json_path: String::new(),
            message: format!(
                "the email reads its images from the issue's page on the site, and {}/ does not \
                 have {first}{more} yet: run bulletin publish, then upload {}/ to {base_url} \
                 ({online})",
                folder.display(),
                site.display()
            ),
        },
        place: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn finding(severity: Severity, line: usize) -> Finding {
        Finding {
            severity,
            problem: Problem {
                file: PathBuf::from("issue.json"),
                position: Some((line, 1)),
                json_path: "title".into(),
                message: "wrong".into(),
            },
            place: None,
        }
    }

    #[test]
    fn errors_come_first_and_the_summary_counts_each_kind() {
        let report = Report::new(
            vec![
                finding(Severity::Warning, 2),
                finding(Severity::Error, 9),
                finding(Severity::Warning, 1),
            ],
            Some(1),
        );
        let order: Vec<_> = report
            .findings()
            .iter()
            .map(|f| (f.severity, f.problem.position))
            .collect();
        assert_eq!(
            order,
            [
                (Severity::Error, Some((9, 1))),
                (Severity::Warning, Some((1, 1))),
                (Severity::Warning, Some((2, 1))),
            ]
        );
        assert_eq!(report.summary(), "1 error, 2 warnings (1 link checked)\n");
        assert!(report.fails(false));
    }

    #[test]
    fn warnings_fail_only_a_strict_check() {
        let report = Report::new(vec![finding(Severity::Warning, 1)], None);
        assert!(!report.fails(false));
        assert!(report.fails(true));
        assert_eq!(
            report.summary(),
            "0 errors, 1 warning (links not checked)\n"
        );
        let clean = Report::new(Vec::new(), Some(37));
        assert!(!clean.fails(true));
        assert_eq!(clean.summary(), "no problems found (37 links checked)\n");
    }
}
