//! Labels in Vietnamese (the default) and English. A page asks for a label by its key; a key
//! missing here is a defect the tests catch, shown as the key itself meanwhile.

/// The language of a page: chosen with `?lang=vi|en`, kept in a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Vi,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Vi => "vi",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vi" => Some(Lang::Vi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn t(self, key: &str) -> &'static str {
        LABELS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("?", |(_, vi, en)| match self {
                Lang::Vi => vi,
                Lang::En => en,
            })
    }
}

/// (key, Vietnamese, English).
pub const LABELS: &[(&str, &str, &str)] = &[
    ("app", "Trục liên thông văn bản", "Document interchange bus"),
    ("login", "Đăng nhập", "Sign in"),
    ("logout", "Đăng xuất", "Sign out"),
    ("user", "Tên đăng nhập", "User name"),
    ("password", "Mật khẩu", "Password"),
    (
        "bad_login",
        "Sai tên đăng nhập hoặc mật khẩu",
        "Wrong user name or password",
    ),
    ("role_operator", "Vận hành", "Operator"),
    ("role_security", "An toàn thông tin", "Security officer"),
    ("role_viewer", "Cơ quan", "Agency"),
    ("overview", "Tổng quan", "Overview"),
    ("documents", "Văn bản", "Documents"),
    ("failed", "Gửi lỗi", "Failed deliveries"),
    ("dead", "Hàng đợi thư chết", "Dead letters"),
    ("registry", "Danh bạ", "Registry"),
    ("certificates", "Chứng thư số & CRL", "Certificates & CRLs"),
    ("verdicts", "Kết quả kiểm tra chữ ký", "Signature verdicts"),
    ("in_per_s", "Văn bản vào / giây", "Documents in / s"),
    ("out_per_s", "Bản giao / giây", "Copies delivered / s"),
    ("error_rate", "Tỉ lệ lỗi", "Error rate"),
    (
        "latency",
        "Thời gian giao (p50 / p95 / p99)",
        "Delivery time (p50 / p95 / p99)",
    ),
    ("queues", "Hàng đợi", "Queues"),
    ("queue", "Hàng đợi", "Queue"),
    ("messages", "Thông điệp chờ", "Messages waiting"),
    ("consumers", "Bộ xử lý", "Consumers"),
    ("peers", "Trục liên kết", "Linked buses"),
    ("bus", "Trục", "Bus"),
    ("backlog", "Đang chờ chuyển", "Waiting"),
    ("forwarders", "Bộ chuyển tiếp", "Forwarders"),
    (
        "no_peers",
        "Trục này không liên kết trục khác",
        "This bus links to no other bus",
    ),
    ("throughput", "Lưu lượng (5 phút)", "Throughput (5 minutes)"),
    ("in", "vào", "in"),
    ("out", "giao", "delivered"),
    ("waiting_data", "Đang đọc số liệu…", "Reading figures…"),
    ("search", "Tìm", "Search"),
    ("doc_id", "Mã trên trục (docId)", "Bus id (docId)"),
    ("document_id", "Số hiệu (DocumentId)", "DocumentId"),
    ("agency", "Cơ quan", "Agency"),
    ("from_date", "Từ ngày", "From"),
    ("to_date", "Đến ngày", "To"),
    ("date_hint", "yyyy/MM/dd", "yyyy/MM/dd"),
    ("sender", "Nơi gửi", "From"),
    ("recipient", "Nơi nhận", "To"),
    ("subject", "Trích yếu", "Subject"),
    ("type", "Loại", "Type"),
    ("created", "Thời điểm nhận", "Accepted"),
    ("copies", "Bản gửi", "Copies"),
    ("next_page", "Trang sau", "Next page"),
    ("none", "Không có", "None"),
    ("trace", "Hành trình", "Trace"),
    ("time", "Thời điểm", "Time"),
    ("event", "Sự kiện", "Event"),
    ("detail", "Chi tiết", "Detail"),
    ("delivery", "Giao", "Delivery"),
    ("transport", "Tình trạng", "Transport"),
    ("status", "Trạng thái", "Status"),
    ("reason", "Lý do", "Reason"),
    ("retry", "Gửi lại", "Retry"),
    ("replay", "Phát lại", "Replay"),
    ("discard", "Hủy bỏ", "Discard"),
    ("replay_all", "Phát lại tất cả", "Replay all"),
    ("discard_all", "Hủy tất cả", "Discard all"),
    ("selected", "Mục đã chọn", "Selected"),
    ("died_in", "Chết tại", "Died in"),
    ("count", "Số lần", "Times"),
    ("code", "Mã định danh", "Code"),
    ("name", "Tên", "Name"),
    ("level", "Cấp", "Level"),
    ("state", "Trạng thái", "State"),
    ("lock", "Khóa", "Lock"),
    ("unlock", "Mở khóa", "Unlock"),
    ("agencies", "Cơ quan, đơn vị", "Agencies"),
    ("systems", "Hệ thống kết nối", "Connected systems"),
    ("system_id", "Mã hệ thống", "System id"),
    ("acts_for", "Gửi nhận cho", "Acts for"),
    ("bind", "Gắn", "Bind"),
    ("unbind", "Gỡ", "Unbind"),
    (
        "certificate_hint",
        "Chứng thư số (PEM) hoặc SHA-256",
        "Certificate (PEM) or its SHA-256",
    ),
    (
        "client_certificates",
        "Chứng thư số máy trạm (SHA-256)",
        "Client certificates (SHA-256)",
    ),
    ("amqp_adapter", "Tài khoản AMQP", "AMQP adapter"),
    (
        "adapter_url",
        "Bộ kết nối AMQP của hệ thống kết nối tới",
        "Systems' AMQP adapters connect to",
    ),
    (
        "adapter_unavailable",
        "Không đọc được tài khoản AMQP",
        "The AMQP adapter accounts could not be read",
    ),
    ("login_password", "Mật khẩu", "Password"),
    ("login_certificate", "Chứng thư số", "Client certificate"),
    ("suspended", "Tạm ngưng", "Suspended"),
    ("adapter_create", "Tạo tài khoản", "Create account"),
    ("adapter_rekey", "Cấp lại", "Re-key"),
    ("adapter_remove", "Xóa tài khoản", "Remove account"),
    (
        "adapter_made",
        "Đã tạo tài khoản AMQP cho hệ thống",
        "AMQP adapter account made for system",
    ),
    (
        "adapter_password_once",
        "Mật khẩu chỉ hiển thị một lần. Hãy chuyển ngay cho đơn vị quản lý hệ thống qua kênh an toàn; trục không lưu mật khẩu này.",
        "The password is shown this once. Pass it on now to the system's administrators over a secure channel; the bus does not keep it.",
    ),
    ("user_name", "Tên đăng nhập", "User name"),
    (
        "back_to_registry",
        "Quay lại danh bạ",
        "Back to the registry",
    ),
    ("locked", "Đã khóa", "Locked"),
    ("active", "Hoạt động", "Active"),
    ("import", "Nhập danh bạ (CSV)", "Import agencies (CSV)"),
    (
        "import_hint",
        "Dán nội dung CSV như tệp xuất ra",
        "Paste CSV as exported",
    ),
    ("export_csv", "Xuất CSV", "Export CSV"),
    ("done", "Đã thực hiện", "Done"),
    ("kind", "Loại", "Kind"),
    ("expires", "Hết hạn / cập nhật", "Expires / next update"),
    ("days_left", "Còn (ngày)", "Days left"),
    ("anchor", "Chứng thư gốc tin cậy", "Trust anchor"),
    ("intermediate", "Chứng thư trung gian", "Intermediate CA"),
    ("crl", "Danh sách thu hồi (CRL)", "CRL"),
    ("expired", "ĐÃ HẾT HẠN", "EXPIRED"),
    ("expiring", "Sắp hết hạn", "Expiring soon"),
    ("ok", "Còn hạn", "Valid"),
    (
        "no_trust",
        "Bus này không kiểm tra chữ ký (không có mục [verifier])",
        "This bus verifies no signatures (no [verifier] section)",
    ),
    ("outcome", "Kết quả", "Outcome"),
    ("signer", "Người ký", "Signer"),
    ("issuer", "Tổ chức cấp", "Issuer"),
    ("valid", "Hợp lệ", "Valid"),
    ("invalid", "Không hợp lệ", "Invalid"),
    ("unsigned", "Không ký", "Unsigned"),
    ("any", "Tất cả", "Any"),
    ("filter", "Lọc", "Filter"),
    ("verified", "Thời điểm kiểm tra", "Verified"),
    ("by_outcome", "Theo kết quả", "By outcome"),
    (
        "forbidden",
        "Vai trò của bạn không được xem trang này",
        "Your role may not see this page",
    ),
    ("not_found", "Không tìm thấy", "Not found"),
    (
        "gateway_error",
        "Cổng trục trả lời lỗi",
        "The gateway answered with an error",
    ),
    (
        "bad_form",
        "Biểu mẫu đã hết hạn; tải lại trang và thử lại",
        "The form has expired; reload the page and try again",
    ),
    ("language", "English", "Tiếng Việt"),
    ("failed_copies", "Bản gửi lỗi", "Failed copies"),
    ("failed_at", "Lỗi lúc", "Failed at"),
    ("audit", "Nhật ký quản trị", "Audit log"),
    (
        "who_did",
        "Người thực hiện và việc đã làm",
        "What was done, and by whom",
    ),
    ("area", "Phạm vi", "Area"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_both_languages_and_one_key() {
        let mut keys = std::collections::HashSet::new();
        for (k, vi, en) in LABELS {
            assert!(keys.insert(*k), "{k} twice");
            assert!(!vi.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(Lang::Vi.t("overview"), "Tổng quan");
        assert_eq!(Lang::En.t("overview"), "Overview");
        assert_eq!(Lang::En.t("no such key"), "?");
    }

    /// Every key the pages ask for exists (the pages' sources are read for `t("...")`).
    #[test]
    fn every_key_the_pages_use_is_defined() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        let mut files = vec![dir.join("lib.rs")];
        for e in std::fs::read_dir(dir.join("pages")).expect("pages") {
            files.push(e.expect("entry").path());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).expect("source");
            for part in text.split(".t(\"").skip(1) {
                let key = part.split('"').next().unwrap_or_default();
                if !LABELS.iter().any(|(k, _, _)| *k == key) {
                    missing.push(format!("{}: {key}", f.display()));
                }
            }
        }
        assert!(missing.is_empty(), "labels missing: {missing:?}");
    }
}
