//! The packages a run sends: letters of a chosen size, signed when asked, made before the clock
//! starts so the generator's own work is not measured.

use anyhow::{Context, bail};
use lienthong_edxml::{OrganId, write_edoc};

/// The signer's PKCS#8 key and certificate (DER).
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    certificate: Vec<u8>,
}

impl Signer {
    /// Reads `<prefix>.key` (PKCS#8 PEM) and `<prefix>.pem` (certificate PEM).
    pub fn load(prefix: &str) -> anyhow::Result<Self> {
        let pem = |path: String, label: &str| -> anyhow::Result<Vec<u8>> {
            let text = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
            lienthong_xmldsig::trust::pem_blocks(&text, label)
                .with_context(|| format!("{path}: no {label}"))?
                .into_iter()
                .next()
                .with_context(|| format!("{path}: no {label}"))
        };
        Ok(Self {
            key: pem(format!("{prefix}.key"), "PRIVATE KEY")?,
            certificate: pem(format!("{prefix}.pem"), "CERTIFICATE")?,
        })
    }
}

/// What every package of a run shares.
#[derive(Clone)]
pub struct Shape {
    pub from: OrganId,
    pub to: Vec<OrganId>,
    /// The package's size in bytes, signature included (within a few bytes).
    pub size: usize,
    pub signer: Option<Signer>,
}

impl Shape {
    /// Package `number` of the run: a letter with one attachment sized so the package comes to
    /// `size` bytes.
    pub fn package(&self, number: u64, attachment: usize) -> anyhow::Result<Vec<u8>> {
        let letter = lienthong_edxml::sample::edoc(&self.from, &self.to, number, attachment);
        let bytes = write_edoc(&letter);
        match &self.signer {
            None => Ok(bytes),
            Some(s) => lienthong_xmldsig::sign(&bytes, &s.key, &s.certificate)
                .map_err(|e| anyhow::anyhow!("signing: {e}")),
        }
    }

    /// The attachment size that brings a package to `size` (base64 makes 4 bytes of 3).
    pub fn attachment_for_size(&self) -> anyhow::Result<usize> {
        let bare = self.package(1, 0)?.len();
        if self.size < bare {
            bail!(
                "--size {} is below the smallest package of this shape ({bare} bytes)",
                self.size
            );
        }
        let mut attachment = (self.size - bare) * 3 / 4;
        // The attachment's own framing: settle on the size in a few steps.
        for _ in 0..4 {
            let got = self.package(1, attachment)?.len();
            if got.abs_diff(self.size) < 64 {
                break;
            }
            let adjust = (got.abs_diff(self.size) * 3 / 4).max(1);
            attachment = if got > self.size {
                attachment.saturating_sub(adjust)
            } else {
                attachment + adjust
            };
        }
        Ok(attachment)
    }
}

/// `count` packages numbered from `first`, made on every core.
pub async fn make(shape: &Shape, first: u64, count: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let attachment = shape.attachment_for_size()?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = count.div_ceil(cores).max(1);
    let mut tasks = Vec::new();
    for start in (0..count).step_by(per) {
        let end = (start + per).min(count);
        let shape = shape.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            (start..end)
                .map(|i| shape.package(first + i as u64, attachment))
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut packages = Vec::with_capacity(count);
    for t in tasks {
        packages.extend(t.await??);
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(size: usize) -> Shape {
        Shape {
            from: OrganId::parse("000.00.00.H49").expect("organ"),
            to: vec![OrganId::parse("000.00.00.G22").expect("organ")],
            size,
            signer: None,
        }
    }

    #[test]
    fn packages_come_to_the_size_asked() {
        for size in [5_000, 20_000, 100_000] {
            let s = shape(size);
            let a = s.attachment_for_size().expect("size");
            let got = s.package(7, a).expect("package").len();
            assert!(got.abs_diff(size) < 64, "{size}: {got}");
        }
    }

    #[test]
    fn a_size_below_the_bare_letter_is_refused_naming_the_option() {
        let err = shape(10).attachment_for_size().expect_err("too small");
        assert!(err.to_string().contains("--size 10"), "{err}");
    }
}
