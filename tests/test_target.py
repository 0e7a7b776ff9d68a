"""The Target object against its data file and the knowledge base it must agree with."""

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.knowledge import load_knowledge
from kernelkit.facts.target import compiler_target, default_target_name, get_target, target_names


def test_every_target_agrees_with_the_knowledge_base():
    for name in target_names():
        target, kb = get_target(name), load_knowledge(name)
        assert (target.opset_ceiling, target.ir_versions, target.custom_layers_key) == \
            (kb.opset_ceiling, tuple(kb.ir_versions), kb.custom_layers_key)


def test_the_compiled_target_is_the_only_one_with_a_compiler_and_writes_ir_v10():
    target = compiler_target()
    assert [t for t in target_names() if get_target(t).compiler] == [target.name]
    assert target.ir_version == 10 and target.blob_version is not None


def test_names_resolve_once_and_targets_pass_through():
    target = get_target(default_target_name())
    assert get_target(target) is target and get_target(None) is target and str(target) == target.name


def test_an_unknown_target_names_the_choices():
    with pytest.raises(KernelkitError) as caught:
        get_target("2023.0")
    assert all(name in str(caught.value.hint) for name in target_names())


def test_the_knowledge_base_takes_a_target_or_its_name():
    target = compiler_target()
    kb = load_knowledge(target)
    assert load_knowledge(target.name) is kb and kb.target is target
    assert kb.evidence, "the compiler target's knowledge carries the real plugin's verdicts"
    assert all(not load_knowledge(name).evidence for name in target_names() if name != target.name)
