// Extension layers: IR layers of any type, written with version="extension", that the 2021.4 MYRIAD plugin
// binds to a custom layer by their type, as it does for an nGraph extension op.
//
// The 2021.4 IR reader creates an ngraph::op::FrameworkNode for a layer of an unknown opset when one of the
// Core's extensions reports the description "framework_node_ext" (the reader compares that string). The
// node keeps the IR's output shapes and, in its FrameworkNodeAttrs, the layer's type, version and <data>.
// Four of its virtual functions stop it short of a custom layer, so this file replaces them in
// FrameworkNode's vtable (a process-wide change, made once before the compile):
//   get_type_info          answers "FrameworkNode"; the legacy conversion names the CNNLayer after it, and
//                          the plugin looks custom layers up by that name: answer the layer's own type;
//   visit_attributes       offers the attributes as one FrameworkNodeAttrs value, which the legacy
//                          conversion cannot read: offer each <data> attribute as a string (the IR reader's
//                          own visitor still gets the original);
//   clone_with_new_inputs  drops the attributes (the plugin clones the function first): copy them over;
//   validate_and_infer_types  refuses any input that differs from the first one seen, so a network the
//                          plugin compiles one sample at a time fails: follow a change of the batch alone.
// Layers of the standard opsets never become FrameworkNodes, so their compile is unchanged.
//
// Everything below is bound to the pinned wheel (openvino 2021.4.2): the symbols are looked up by name and
// the vtable slots are checked against them; the two fixed offsets were read off the wheel's code:
// FrameworkNode::visit_attributes passes `this + 0x220` (the attributes) to the visitor, and
// validate_and_infer_types walks the vector at `this + 0x208` (the inputs first seen).

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <typeinfo>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace InferenceEngine {
class IExtension;
struct Version {
    struct { int major; int minor; } apiVersion;
    const char* buildNumber;
    const char* description;
};
}  // namespace InferenceEngine

namespace {

// InferenceEngine::IExtension's virtual functions, in its vtable's order (read off the wheel's vtable:
// getOpSets, getImplTypes, getImplementation, Unload, GetVersion, Release, two destructors), behind the
// same std::enable_shared_from_this base. Only GetVersion matters; the rest answer "nothing".
class FrameworkNodeExtension : public std::enable_shared_from_this<FrameworkNodeExtension> {
public:
    struct NoOpSet {};  // an empty std::map has the same layout whatever its value type
    virtual std::map<std::string, NoOpSet> getOpSets() { return {}; }
    virtual std::vector<std::string> getImplTypes(const std::shared_ptr<void>&) { return {}; }
    virtual std::shared_ptr<void> getImplementation(const std::shared_ptr<void>&, const std::string&) {
        return {};
    }
    virtual void Unload() noexcept {}
    virtual void GetVersion(const InferenceEngine::Version*& version) const noexcept { version = &kVersion; }
    virtual void Release() noexcept {}
    virtual ~FrameworkNodeExtension() {}

private:
    static constexpr InferenceEngine::Version kVersion = {{2, 1}, "kernelkit", "framework_node_ext"};
};

struct DiscreteTypeInfo {           // ngraph::DiscreteTypeInfo (24 bytes, as the wheel's type_info symbols)
    const char* name;
    unsigned long long version;
    const DiscreteTypeInfo* parent;
};

struct FrameworkNodeAttrs {          // ngraph::op::FrameworkNodeAttrs (its constructor initialises these)
    std::string type_name;
    std::string opset_name;
    std::unordered_map<std::string, std::string> attrs;
};

constexpr size_t kAttrsOffset = 0x220;

FrameworkNodeAttrs& attrs_of(const void* node) {
    return *reinterpret_cast<FrameworkNodeAttrs*>(const_cast<char*>(static_cast<const char*>(node)) + kAttrsOffset);
}

// ngraph::AttributeAdapter<std::string>: its vtable (get_type_info, destructors, get, set) and the
// reference it reads and writes.
struct StringAdapter {
    void* const* vptr;
    std::string* value;
};

using VisitAttributes = bool (*)(void* node, void* visitor);
using GetTypeInfo = const DiscreteTypeInfo& (*)(const void* node);
using Clone = void* (*)(void* result, const void* node, const void* inputs);   // shared_ptr via `result`
using OnStringAdapter = void (*)(void* visitor, const std::string& name, StringAdapter& adapter);

VisitAttributes g_visit_attributes = nullptr;
GetTypeInfo g_get_type_info = nullptr;
Clone g_clone = nullptr;
void* const* g_string_adapter_vptr = nullptr;
constexpr int kOnStringAdapterSlot = 4;   // AttributeVisitor::on_adapter(const string&, ValueAccessor<string>&)

const char* dynamic_type_name(void* object) {
    void* const* vptr = *reinterpret_cast<void* const**>(object);
    return static_cast<const std::type_info*>(vptr[-1])->name();
}

bool visit_attributes(void* node, void* visitor) {
    if (std::strstr(dynamic_type_name(visitor), "XmlDeserializer") != nullptr) {
        return g_visit_attributes(node, visitor);   // the IR reader fills the attributes
    }
    auto on_string = reinterpret_cast<OnStringAdapter>((*reinterpret_cast<void* const**>(visitor))[kOnStringAdapterSlot]);
    for (const auto& item : attrs_of(node).attrs) {
        std::string value = item.second;
        StringAdapter adapter{g_string_adapter_vptr, &value};
        on_string(visitor, item.first, adapter);
    }
    return true;
}

const DiscreteTypeInfo& get_type_info(const void* node) {
    const std::string& type = attrs_of(node).type_name;
    if (type.empty()) return g_get_type_info(node);   // not filled yet: still a plain FrameworkNode
    // Interned for the life of the process: the name must stay valid wherever it was copied.
    static auto* infos = new std::map<std::string, DiscreteTypeInfo>();
    auto found = infos->find(type);
    if (found == infos->end()) {
        found = infos->emplace(type, DiscreteTypeInfo{nullptr, 0, nullptr}).first;
        found->second.name = found->first.c_str();
    }
    return found->second;
}

void* clone_with_new_inputs(void* result, const void* node, const void* inputs) {
    g_clone(result, node, inputs);
    const void* copy = *static_cast<void* const*>(result);
    if (copy != nullptr) attrs_of(copy) = attrs_of(node);
    return result;
}

// A network whose inputs share a batch N > 1 is compiled one sample at a time: the plugin sets its inputs to
// batch 1 and revalidates every node. FrameworkNode refuses any input that differs from the one it first saw
// (m_inputs_desc) and keeps the IR's output shapes; for a change of the batch alone, the node follows it (its
// outputs that had the old batch get the new one), as any op of the network does.
using ValidateAndInferTypes = void (*)(void* node);
using SizeOf = size_t (*)(const void* node);
using ShapeAt = const void* (*)(const void* node, size_t index);           // const PartialShape&
using ToShape = void (*)(std::vector<size_t>* result, const void* shape);  // PartialShape::to_shape
using MakeShape = void (*)(void* shape, const std::vector<long>& dims);    // PartialShape(vector<int64>)
using TypeAt = const void* (*)(const void* node, size_t index);            // const element::Type&
using SetOutputType = void (*)(void* node, size_t index, const void* type, const void* shape);
constexpr size_t kInputsDescOffset = 0x208;   // std::vector<tuple<element::Type, PartialShape>> (0x208..0x220)
constexpr size_t kDescShapeOffset = 8;        // the PartialShape inside one element

ValidateAndInferTypes g_validate = nullptr;
SizeOf g_input_size = nullptr, g_output_size = nullptr;
ShapeAt g_input_shape = nullptr, g_output_shape = nullptr;
ToShape g_to_shape = nullptr;
MakeShape g_make_shape = nullptr;
TypeAt g_output_type = nullptr;
SetOutputType g_set_output_type = nullptr;

void follow_batch(void* node) {
    auto** desc = reinterpret_cast<char**>(static_cast<char*>(node) + kInputsDescOffset);   // begin, end
    if (g_input_size(node) == 0 || desc[0] == desc[1]) return;       // first validation: nothing recorded
    std::vector<size_t> before, now;
    g_to_shape(&before, desc[0] + kDescShapeOffset);
    g_to_shape(&now, g_input_shape(node, 0));
    if (before.size() != now.size() || before.empty() || before[0] == now[0] ||
        !std::equal(before.begin() + 1, before.end(), now.begin() + 1)) {
        return;                                                       // not a change of the batch alone
    }
    for (size_t output = 0; output < g_output_size(node); ++output) {
        std::vector<size_t> dims;
        g_to_shape(&dims, g_output_shape(node, output));
        if (dims.empty() || dims[0] != before[0]) continue;
        std::vector<long> batched(dims.begin(), dims.end());
        batched[0] = static_cast<long>(now[0]);
        alignas(16) unsigned char shape[128];          // a PartialShape, never destroyed (its dims leak)
        g_make_shape(shape, batched);
        g_set_output_type(node, output, g_output_type(node, output), shape);
    }
    desc[1] = desc[0];        // forget the inputs first seen (their storage is left as it is): record anew
}

void validate_and_infer_types(void* node) {
    try {
        follow_batch(node);
    } catch (...) {           // a dynamic shape: leave the node to its own check
    }
    g_validate(node);
}

int slot_of(void* const* vtable, const void* function) {
    for (int slot = 0; slot < 48; ++slot) {
        if (vtable[slot] == function) return slot;
    }
    return -1;
}

}  // namespace

// The extension to add to the Core, or null with `why` set when this wheel is not the one expected.
std::shared_ptr<InferenceEngine::IExtension> framework_layer_extension(std::string& why) {
    auto symbol = [](const char* name) { return dlsym(RTLD_DEFAULT, name); };
    auto** vtable = static_cast<void**>(symbol("_ZTVN6ngraph2op13FrameworkNodeE"));
    void* deleting_dtor = symbol("_ZN6ngraph2op13FrameworkNodeD0Ev");
    void* get_autob = symbol("_ZNK6ngraph4Node9get_autobEv");
    void* type_info = symbol("_ZNK6ngraph2op13FrameworkNode13get_type_infoEv");
    void* clone = symbol("_ZNK6ngraph2op13FrameworkNode21clone_with_new_inputsERKSt6vectorINS_6OutputINS_4NodeEEESaIS5_EE");
    void* validate = symbol("_ZN6ngraph2op13FrameworkNode24validate_and_infer_typesEv");
    g_input_size = reinterpret_cast<SizeOf>(symbol("_ZNK6ngraph4Node14get_input_sizeEv"));
    g_output_size = reinterpret_cast<SizeOf>(symbol("_ZNK6ngraph4Node15get_output_sizeEv"));
    g_input_shape = reinterpret_cast<ShapeAt>(symbol("_ZNK6ngraph4Node23get_input_partial_shapeEm"));
    g_output_shape = reinterpret_cast<ShapeAt>(symbol("_ZNK6ngraph4Node24get_output_partial_shapeEm"));
    g_to_shape = reinterpret_cast<ToShape>(symbol("_ZNK6ngraph12PartialShape8to_shapeEv"));
    g_make_shape = reinterpret_cast<MakeShape>(symbol("_ZN6ngraph12PartialShapeC1ERKSt6vectorIlSaIlEE"));
    g_output_type = reinterpret_cast<TypeAt>(symbol("_ZNK6ngraph4Node23get_output_element_typeEm"));
    g_set_output_type = reinterpret_cast<SetOutputType>(
        symbol("_ZN6ngraph4Node15set_output_typeEmRKNS_7element4TypeERKNS_12PartialShapeE"));
    auto* const* adapter_vtable = static_cast<void* const*>(symbol("_ZTVN6ngraph16AttributeAdapterISsEE"));
    if (!vtable || !deleting_dtor || !get_autob || !type_info || !clone || !adapter_vtable || !validate ||
        !g_input_size || !g_output_size || !g_input_shape || !g_output_shape || !g_to_shape || !g_make_shape ||
        !g_output_type || !g_set_output_type) {
        why = "the wheel's libraries lack a FrameworkNode symbol";
        return nullptr;
    }
    void** slots = vtable + 2;   // past offset-to-top and typeinfo
    // visit_attributes is inline upstream (no symbol): it is the slot between the deleting destructor and
    // Node::get_autob.
    const int visit_slot = slot_of(slots, deleting_dtor) + 1;
    const int type_slot = slot_of(slots, type_info);
    const int clone_slot = slot_of(slots, clone);
    const int validate_slot = slot_of(slots, validate);
    if (visit_slot <= 0 || slots[visit_slot + 1] != get_autob || type_slot < 0 || clone_slot < 0 ||
        validate_slot < 0) {
        why = "FrameworkNode's vtable is not laid out as in openvino 2021.4.2";
        return nullptr;
    }
    const long page = sysconf(_SC_PAGESIZE);
    const auto first = reinterpret_cast<uintptr_t>(slots) & ~static_cast<uintptr_t>(page - 1);
    const auto end = reinterpret_cast<uintptr_t>(slots + 48);
    if (mprotect(reinterpret_cast<void*>(first), end - first, PROT_READ | PROT_WRITE) != 0) {
        why = "cannot make FrameworkNode's vtable writable";
        return nullptr;
    }
    g_visit_attributes = reinterpret_cast<VisitAttributes>(slots[visit_slot]);
    g_get_type_info = reinterpret_cast<GetTypeInfo>(slots[type_slot]);
    g_clone = reinterpret_cast<Clone>(slots[clone_slot]);
    g_validate = reinterpret_cast<ValidateAndInferTypes>(slots[validate_slot]);
    g_string_adapter_vptr = adapter_vtable + 2;
    slots[visit_slot] = reinterpret_cast<void*>(&visit_attributes);
    slots[type_slot] = reinterpret_cast<void*>(&get_type_info);
    slots[clone_slot] = reinterpret_cast<void*>(&clone_with_new_inputs);
    slots[validate_slot] = reinterpret_cast<void*>(&validate_and_infer_types);
    mprotect(reinterpret_cast<void*>(first), end - first, PROT_READ);
    auto extension = std::make_shared<FrameworkNodeExtension>();
    // Same object, seen as the library's IExtension: the layouts match (see the class).
    return std::shared_ptr<InferenceEngine::IExtension>(extension,
                                                        reinterpret_cast<InferenceEngine::IExtension*>(extension.get()));
}
