import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.core.xmlsafe import parse_document, parse_file, parse_fragment_run

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_documents_with_entities_are_refused_with_the_line(payload):
    with pytest.raises(KernelkitError) as info:
        parse_document(payload, path="evil.xml")
    message = str(info.value)
    assert message.startswith("evil.xml:2:")
    assert "DTD" in message


def test_malformed_xml_names_file_and_line():
    with pytest.raises(KernelkitError) as info:
        parse_document(b"<a>\n<b>\n</a>", path="broken.xml")
    assert str(info.value).startswith("broken.xml:3:")


def test_fragment_run_keeps_line_numbers_and_skips_declaration():
    text = b'<?xml version="1.0"?>\n<CustomLayer name="A"/>\n\n<CustomLayer name="B"/>\n'
    root = parse_fragment_run(text, path="b.xml")
    assert [(el.get("name"), el.sourceline) for el in root] == [("A", 2), ("B", 4)]


def test_oversized_file_is_refused_before_parsing(tmp_path):
    big = tmp_path / "big.xml"
    big.write_bytes(b"<a>" + b" " * 2048 + b"</a>")
    with pytest.raises(KernelkitError, match="more than the 1024 bytes"):
        parse_file(big, max_bytes=1024)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(KernelkitError, match="file not found"):
        parse_file(tmp_path / "nope.xml")
