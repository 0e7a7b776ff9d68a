"""kernelkit.facts.plugin_messages: each pattern reads the message the real plugin printed, as its entry says."""

from kernelkit.facts import plugin_messages
from kernelkit.facts.plugin_messages import PluginMessage
from kernelkit.myriad.compile import parse_compile_error

MESSAGES = {name: value for name, value in vars(plugin_messages).items() if isinstance(value, PluginMessage)}


def test_every_pattern_reads_its_source_message():
    assert len(MESSAGES) == 9
    for name, message in MESSAGES.items():
        assert message.search(message.printed), name
        assert message.means and message.seen_in, name


def test_the_groups_readers_take():
    unsupported = plugin_messages.UNSUPPORTED_LAYER_TYPE.search(plugin_messages.UNSUPPORTED_LAYER_TYPE.printed)
    assert (unsupported["name"], unsupported["type"], unsupported["reason"]) == \
        ("Abs_723", "Abs", 'unsupported layer type "Abs"')
    unreachable = [form.search(form.printed) for form in plugin_messages.READER_CANNOT_CREATE]
    assert [(m["type"], m["opset"]) for m in unreachable] == [("MyRelu", "extension"), ("Hardmax", "opset1")]
    expected = plugin_messages.INPUT_TYPE_EXPECTED.search(plugin_messages.INPUT_TYPE_EXPECTED.printed)
    assert (expected["port"], expected["found"], expected["accepts"]) == ("0", "S32", "FP16")


def test_the_layer_a_refusal_names_comes_from_the_most_specific_form():
    assert parse_compile_error(plugin_messages.LAYER_OF_TYPE.printed) == ("probe", "Pow")
    assert parse_compile_error(plugin_messages.CANNOT_CREATE_LAYER.printed) == ("relu0", "MyRelu")
    assert parse_compile_error(plugin_messages.FAILED_TO_COMPILE_LAYER.printed) == ("probe", None)
