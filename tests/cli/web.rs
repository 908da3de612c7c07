//! The pages people read in a browser, measured in a real headless Chromium: no serious or
//! critical accessibility violation (axe-core) and no horizontal scroll on a phone: the
//! rendered email, and `serve`'s unsubscribe pages.

use fantoccini::Locator;

use crate::browser::{ChromeDriver, eval, horizontal_overflow, serious_axe_violations, wait_until};
use crate::common::Workspace;
use crate::serve::{Server, issue_in, link};

#[tokio::test(flavor = "multi_thread")]
async fn the_rendered_email_reads_on_a_phone_and_has_no_serious_accessibility_violation() {
    let ws = Workspace::with_sample();
    ws.run(&["render", "issues/2020-06.json"]).ok();
    let page = format!("file://{}", ws.path().join("out/2020-06.html").display());
    let driver = ChromeDriver::start();
    let c = driver.connect().await;
    c.goto(&page).await.unwrap();
    for width in [375, 600] {
        assert_eq!(
            horizontal_overflow(&c, width).await,
            0,
            "horizontal scroll at {width} px"
        );
    }
    let violations = serious_axe_violations(&c).await;
    assert!(violations.is_empty(), "{violations:#?}");
    c.close().await.unwrap();
}

/// The unsubscribe page and its confirmation, as a reader's browser shows them: in Arabic
/// (right to left, the Efus layout's logo and colours) and in English, no serious or
/// critical accessibility violation, no horizontal scroll on a 375 px phone, the logo
/// loaded (the page's Content-Security-Policy allows it), and the button works without
/// JavaScript.
#[tokio::test(flavor = "multi_thread")]
async fn the_unsubscribe_pages_read_on_a_phone_and_have_no_serious_accessibility_violation() {
    let ws = Workspace::for_sending("");
    issue_in(&ws, "2020-08", "ar");
    let server = Server::start(&ws);
    let driver = ChromeDriver::start();
    let c = driver.connect().await;
    // JavaScript stays on only for axe-core and the measures: the pages have none.
    for (slug, h1) in [
        ("2020-08", "أُلغي اشتراكك"),
        ("2020-06", "You are unsubscribed"),
    ] {
        let url = format!("http://{}{}", server.addr, link("ana@example.org", slug));
        c.goto(&url).await.unwrap();
        for (step, page) in [("the page", &url), ("the confirmation", &url)] {
            if step == "the confirmation" {
                c.find(Locator::Css("button"))
                    .await
                    .unwrap()
                    .click()
                    .await
                    .unwrap();
                wait_until(
                    &c,
                    "return document.querySelector('h1').textContent",
                    serde_json::json!(h1),
                )
                .await;
            }
            let logo = eval(
                &c,
                "const i = document.querySelector('img.logo'); return i ? i.complete && i.naturalWidth : -1",
            )
            .await;
            assert!(
                logo.as_u64().is_some_and(|w| w > 0),
                "{slug}, {step}: logo {logo}"
            );
            assert_eq!(
                horizontal_overflow(&c, 375).await,
                0,
                "{slug}, {step} ({page}): horizontal scroll at 375 px"
            );
            let violations = serious_axe_violations(&c).await;
            assert!(violations.is_empty(), "{slug}, {step}: {violations:#?}");
        }
    }
    c.close().await.unwrap();
    assert_eq!(crate::serve::events(&ws), 2);
}
