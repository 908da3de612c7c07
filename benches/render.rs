//! In-process render time of the sample issue (criterion): the whole once-per-issue render
//! (template data, Handlebars, MJML compile, text), next to mrml alone compiling the MJML that
//! render generated (the floor: bulletin's own mrml, default options), and the per-recipient
//! fill that sending repeats. Run with `cargo bench --bench render`.

use std::path::Path;

use bulletin::issue;
use bulletin::layout::Layout;
use bulletin::merge::Recipient;
use bulletin::render::{self, RenderOptions};
use criterion::{Criterion, criterion_group, criterion_main};

fn sample() -> (issue::LoadedIssue, Layout) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let loaded = issue::load(&root.join("issues/2020-06.json")).expect("sample issue");
    let layout = Layout::load(Some(&root.join("layouts/efus"))).expect("sample layout");
    (loaded, layout)
}

fn bench_render(c: &mut Criterion) {
    let (loaded, layout) = sample();
    let opts = RenderOptions::default();
    c.bench_function("render sample issue (once per issue)", |b| {
        b.iter(|| render::render(&loaded, &layout, &opts).expect("render"))
    });
    c.bench_function("load and parse sample issue", |b| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("issues/2020-06.json");
        b.iter(|| issue::load(&path).expect("load"))
    });
    let rendered = render::render(&loaded, &layout, &opts).expect("render");
    c.bench_function("bare mrml on the same MJML (the floor)", |b| {
        let options = mrml::prelude::render::RenderOptions::default();
        b.iter(|| {
            let parsed = mrml::parse(&rendered.mjml).expect("the MJML render generated");
            parsed.element.render(&options).expect("compiled")
        })
    });
    let values = Recipient::sample();
    c.bench_function("fill for one recipient (per recipient)", |b| {
        b.iter(|| rendered.fill(&values))
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
