//! Verdict exports for security officers.

/// Verdicts as CSV (RFC 4180 quoting), one row per document, for spreadsheets.
pub fn verdicts_csv(rows: &[lienthong_store::VerdictRow]) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    let mut out = String::from(
        "doc_id,verified_at,sender,sender_system,outcome,reason_code,reason,signer,issuer,serial,signature_method\r\n",
    );
    for r in rows {
        let cells = [
            r.doc_id.clone(),
            lienthong_edxml::Timestamp::from_unix_ms(r.verified_ms).to_string(),
            r.sender.clone(),
            r.sender_system.clone(),
            r.outcome.clone(),
            r.reason_code.clone().unwrap_or_default(),
            r.reason.clone().unwrap_or_default(),
            r.signer.clone().unwrap_or_default(),
            r.issuer.clone().unwrap_or_default(),
            r.serial.clone().unwrap_or_default(),
            r.signature_method.clone().unwrap_or_default(),
        ];
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let row = lienthong_store::VerdictRow {
            doc_id: "d1".into(),
            sender: "000.00.00.H49".into(),
            sender_system: "s".into(),
            outcome: "valid".into(),
            reason_code: None,
            reason: Some("said \"no\", twice".into()),
            signer: Some("C=VN, O=UBND, CN=Văn thư".into()),
            issuer: None,
            serial: None,
            signature_method: Some("rsa-sha256".into()),
            verified_ms: 0,
            verdict: "{}".into(),
        };
        let csv = verdicts_csv(&[row]);
        let line = csv.lines().nth(1).expect("data row");
        assert!(line.contains("\"said \"\"no\"\", twice\""), "{line}");
        assert!(line.contains("\"C=VN, O=UBND, CN=Văn thư\""), "{line}");
        assert!(
            line.starts_with("d1,1970/01/01 07:00:00,000.00.00.H49,"),
            "{line}"
        );
    }
}
