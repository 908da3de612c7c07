//! The pages people read in a browser, measured in a real headless Chromium: no serious or
//! critical accessibility violation (axe-core) and no horizontal scroll on a phone.

use crate::browser::{ChromeDriver, horizontal_overflow, serious_axe_violations};
use crate::common::Workspace;

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
