//! Well-formed packages for demos, tests and load generation.

use crate::model::*;
use crate::write::{NewAttachment, NewEdoc};

/// A plausible official letter (công văn) from `from` to every code in `to`, numbered `number`.
/// `attachment_bytes` sizes one PDF-like attachment (0 for none).
pub fn edoc(from: &OrganId, to: &[OrganId], number: u64, attachment_bytes: usize) -> NewEdoc {
    let date = EdxmlDate(time::OffsetDateTime::now_utc().date());
    let notation = "UBND-VP";
    // Built from a valid OrganId and date, so the shape holds by construction.
    let document_id = DocumentId::from_parts(from, date, &format!("{number}/{notation}"));
    let header = MessageHeader {
        from: Organization {
            organization_in_charge: Some("Văn phòng".into()),
            email: Some("vanphong@example.gov.vn".into()),
            ..Organization::new(from.clone(), "Ủy ban nhân dân tỉnh")
        },
        to: to
            .iter()
            .map(|o| Organization::new(o.clone(), "Cơ quan nhận"))
            .collect(),
        document_id,
        code: Code {
            code_number: (number % 100_000_000_000).to_string(),
            code_notation: notation.into(),
        },
        promulgation_info: PromulgationInfo {
            place: Some("Thành phố Huế".into()),
            promulgation_date: date,
        },
        document_type: DocumentType {
            type_: 1,
            type_detail: Some(2),
            type_name: Some("Công văn".into()),
        },
        subject: format!("V/v triển khai liên thông văn bản điện tử (số {number})"),
        content: Some("Đề nghị các cơ quan, đơn vị triển khai thực hiện.".into()),
        signer_info: SignerInfo {
            competence: Some("TM. Ủy ban nhân dân".into()),
            position: Some("Chủ tịch".into()),
            full_name: Some("Nguyễn Văn A".into()),
        },
        due_date: None,
        to_places: vec!["Như trên".into(), "Lưu: VT".into()],
        other_info: OtherInfo {
            priority: Some(0),
            promulgation_amount: Some(1),
            page_amount: Some(1),
            ..OtherInfo::default()
        },
        response_for: Vec::new(),
        steering_type: Some(1),
    };
    let attachments = if attachment_bytes == 0 {
        Vec::new()
    } else {
        let mut data = b"%PDF-1.4\n".to_vec();
        data.resize(attachment_bytes.max(data.len()), b'x');
        vec![NewAttachment {
            content_id: None,
            attachment_name: format!("cv-{number}.pdf"),
            content_type: Some("application/pdf".into()),
            description: Some("Văn bản".into()),
            data,
            content_ref: None,
        }]
    };
    NewEdoc {
        header,
        trace: Vec::new(),
        business: None,
        manifest: None,
        attachments,
    }
}
