//! `ftpswarm report`: charts (PNG and SVG) and `report.md` for a run directory, drawn from
//! the directory alone so old runs can be redrawn.

pub mod charts;
pub mod markdown;

use crate::plan::{self, observed, PlanRequest, Recommendation, RECOMMENDATION};
use charts::{Blocking, Chart, Concurrency, Failures, Latency, Occupancy, PortsVsData};
use markdown::ChartRef;
use std::path::{Path, PathBuf};

pub use crate::rundir::{CHARTS_DIR, REPORT};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Observed(#[from] observed::ObservedError),
    #[error("chart {name}: {message}")]
    Chart { name: &'static str, message: String },
    #[error(transparent)]
    Output(#[from] crate::rundir::OutputError),
}

pub struct ReportOutput {
    pub report: PathBuf,
    pub charts: Vec<ChartRef>,
    pub warnings: Vec<String>,
}

fn draw(chart: &impl Chart, dir: &Path, refs: &mut Vec<ChartRef>) -> Result<(), ReportError> {
    charts::render(chart, &dir.join(CHARTS_DIR)).map_err(|message| ReportError::Chart {
        name: chart.name(),
        message,
    })?;
    refs.push(ChartRef {
        title: chart.title(),
        png: format!("{CHARTS_DIR}/{}.png", chart.name()),
        svg: format!("{CHARTS_DIR}/{}.svg", chart.name()),
        caption: chart.caption(),
    });
    Ok(())
}

/// The recommendation the run directory holds, or a fresh one for the observed load (written
/// back, so the report and recommendation.json agree). None when the run cannot be planned
/// from (no grants at all): the report says so.
fn recommendation(dir: &Path, warnings: &mut Vec<String>) -> Option<Recommendation> {
    if let Ok(r) = crate::rundir::read_json::<Recommendation>(&dir.join(RECOMMENDATION)) {
        return Some(r);
    }
    match plan::plan_and_store(dir, &PlanRequest::default()) {
        Ok((r, write_error)) => {
            if let Some(e) = write_error {
                warnings.push(e.to_string());
            }
            Some(r)
        }
        Err(e) => {
            warnings.push(format!("no recommendation: {e}"));
            None
        }
    }
}

/// Draws every chart and writes report.md.
pub fn generate(dir: &Path) -> Result<ReportOutput, ReportError> {
    let obs = observed::read_head(dir)?;
    let grants = observed::sample_grants(dir, charts::MAX_SEGMENTS)?;
    let mut warnings = obs.warnings.clone();
    let rec = recommendation(dir, &mut warnings);
    let histograms = charts::read_latency_log(dir).unwrap_or_else(|e| {
        warnings.push(format!("latency.hlog unreadable ({e}); the latency chart is empty"));
        Vec::new()
    });
    let fit = rec
        .as_ref()
        .and_then(|r| r.fit.as_ref())
        .and_then(|f| f.ports_vs_data_connections.as_ref())
        .map(|g| (g.slope, g.intercept, g.r2));
    let mut refs = Vec::new();
    draw(
        &Concurrency {
            timeline: &obs.timeline,
        },
        dir,
        &mut refs,
    )?;
    draw(
        &Occupancy {
            grants: &grants,
            range: obs.expected_range,
        },
        dir,
        &mut refs,
    )?;
    draw(
        &PortsVsData {
            timeline: &obs.timeline,
            fit,
        },
        dir,
        &mut refs,
    )?;
    draw(&Latency { histograms }, dir, &mut refs)?;
    draw(
        &Failures {
            timeline: &obs.timeline,
        },
        dir,
        &mut refs,
    )?;
    draw(
        &Blocking {
            recommendation: rec.as_ref(),
        },
        dir,
        &mut refs,
    )?;
    let text = markdown::render_report(&obs.manifest, &obs.summary, rec.as_ref(), &refs);
    let report = dir.join(REPORT);
    std::fs::write(&report, text).map_err(|e| crate::rundir::OutputError::Write {
        path: report.clone(),
        message: e.to_string(),
    })?;
    Ok(ReportOutput {
        report,
        charts: refs,
        warnings,
    })
}

/// The sweep's chart and report.md, in the sweep directory.
pub fn sweep_report(dir: &Path, result: &crate::sweep::SweepResult) -> Result<PathBuf, ReportError> {
    let mut refs = Vec::new();
    draw(&charts::SweepChart { result }, dir, &mut refs)?;
    let text = markdown::render_sweep(result, &refs);
    let path = dir.join(REPORT);
    std::fs::write(&path, text).map_err(|e| crate::rundir::OutputError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}
