// myriad_shim: compile a model with the MYRIAD plugin of pip openvino 2021.4.2 and export the blob.
//
//   myriad_shim MODEL(.xml|.onnx) OUT.blob [KEY=VALUE ...]
//
// One key is the shim's own and never reaches the plugin: KERNELKIT_OUTPUT_PRECISION=FP16 makes every FP32
// network output FP16, as compile_tool's `-op FP16` does. The plugin takes an output's precision from the
// network object only (the IR reader turns every float Result into FP32), so the model is read first, its
// outputs set, then compiled; without the key the model path goes to the plugin as before.
// Exit 0: blob written. Exit 1: the plugin refused the model (its message on stderr, after "error: ").
// Exit 2: usage. The Python API cannot do this (IECore.load_network always creates an infer request,
// which needs a device), hence this program.
//
// No OpenVINO header is used. The few members called here are declared by hand, and each one is an
// exported symbol of the wheel's libinference_engine.so (checked with `nm -D --defined-only | c++filt`):
//   InferenceEngine::Core::Core(std::string const&)
//   InferenceEngine::Core::LoadNetwork(std::string const&, std::string const&, std::map<std::string, std::string> const&)
//   InferenceEngine::ExecutableNetwork::Export(std::string const&)
//   InferenceEngine::Core::AddExtension(std::shared_ptr<InferenceEngine::IExtension> const&)
// and, for KERNELKIT_OUTPUT_PRECISION only:
//   InferenceEngine::Core::ReadNetwork(std::string const&, std::string const&) const
//   InferenceEngine::Core::LoadNetwork(InferenceEngine::CNNNetwork const&, std::string const&, std::map const&)
//   InferenceEngine::CNNNetwork::getOutputsInfo() const
//   InferenceEngine::Data::getPrecision() const, InferenceEngine::Data::setPrecision(Precision const&)
// The wheel is built with the old libstdc++ string ABI: compile with -D_GLIBCXX_USE_CXX11_ABI=0.
// Core and ExecutableNetwork have no exported destructors (they are inline upstream); the objects below
// are never destroyed and the process ends with _exit, so nothing of the library's teardown runs.
// Three libc functions are interposed (the executable is linked with -rdynamic, so its definitions win
// symbol lookup): open() for the device-search lock, opendir() and clock_gettime() to cut the device
// search short. Each is explained where it is defined. framework_layers.cpp lets layers of version
// "extension" reach a custom-layer binding.

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <exception>
#include <fcntl.h>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

namespace InferenceEngine {

class IExtension;

// The layout of ie_precision.hpp's Precision (2021.4): an element size, a name, a float flag and the
// ePrecision value (an uint8_t enum: FP32 = 10, FP16 = 11). Only whole objects are passed by reference.
class Precision {
public:
    enum ePrecision : uint8_t { FP32 = 10, FP16 = 11 };
    Precision(size_t bits, const char* name, bool is_float, ePrecision value)
        : bitsSize_(bits), name_(name), isFloat_(is_float), value_(value) {}
    ePrecision value() const { return value_; }

private:
    size_t bitsSize_;
    const char* name_;
    bool isFloat_;
    ePrecision value_;
};

class Data {
public:
    const Precision& getPrecision() const;
    void setPrecision(const Precision& precision);
};

class CNNNetwork {
public:
    ~CNNNetwork() {}
    std::map<std::string, std::shared_ptr<Data>> getOutputsInfo() const;

private:
    alignas(16) unsigned char storage_[512];
};

// Storage larger than the real objects (a few shared_ptrs each); the library constructs into it.
class ExecutableNetwork {
public:
    // User-provided (non-trivial) destructor: like the real class, it is returned through a hidden pointer.
    ~ExecutableNetwork() {}
    void Export(const std::string& modelFileName);

private:
    alignas(16) unsigned char storage_[512];
};

class Core {
public:
    explicit Core(const std::string& xmlConfigFile);
    void AddExtension(const std::shared_ptr<IExtension>& extension);
    ~Core() {}
    ExecutableNetwork LoadNetwork(const std::string& modelPath, const std::string& deviceName,
                                  const std::map<std::string, std::string>& config);
    CNNNetwork ReadNetwork(const std::string& modelPath, const std::string& binPath) const;
    ExecutableNetwork LoadNetwork(const CNNNetwork& network, const std::string& deviceName,
                                  const std::map<std::string, std::string>& config);

private:
    alignas(16) unsigned char storage_[512];
};

}  // namespace InferenceEngine

std::shared_ptr<InferenceEngine::IExtension> framework_layer_extension(std::string& why);

// The plugin looks for a device while holding an flock on one machine-wide file, so compiles in
// parallel processes would queue behind each other. With no device to guard, each compile
// may take its own lock file: KERNELKIT_MVNC_MUTEX names it. The plugin calls open(); this definition
// in the executable (exported with -rdynamic) comes first in symbol lookup.
static const char kSharedDeviceMutex[] = "/tmp/mvnc.mutex";

extern "C" int open(const char* path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list args;
        va_start(args, flags);
        mode = static_cast<mode_t>(va_arg(args, int));
        va_end(args);
    }
    if (path != nullptr && std::strcmp(path, kSharedDeviceMutex) == 0) {
        const char* own = std::getenv("KERNELKIT_MVNC_MUTEX");
        if (own != nullptr && own[0] != '\0') path = own;
    }
    return openat(AT_FDCWD, path, flags, mode);
}

// With no device attached, the plugin's device search spins for a fixed 5 s, probing /sys/class/mxlk/ (the
// PCIe driver's folder) and a udev socket in a loop without sleeping: 4+ s of CPU per compile, and the same
// blob at the end. Each probe of that folder moves this process's clocks 100 ms forward, so the search runs
// out after some 50 probes. Nothing the compiler computes depends on time: the blob is byte-identical
// (tests/test_compile.py checks that against KERNELKIT_SHIM_REAL_CLOCK=1, which turns this off).
static const char kPcieProbeDir[] = "/sys/class/mxlk/";
static const long long kSkewPerProbeNs = 100000000LL;
static std::atomic<long long> g_clock_skew_ns{0};
static const bool g_real_clock = [] {
    const char* value = std::getenv("KERNELKIT_SHIM_REAL_CLOCK");
    return value != nullptr && value[0] == '1';
}();

extern "C" DIR* opendir(const char* name) {
    using OpenDir = DIR* (*)(const char*);
    static const OpenDir real_opendir = reinterpret_cast<OpenDir>(dlsym(RTLD_NEXT, "opendir"));
    if (!g_real_clock && std::strcmp(name, kPcieProbeDir) == 0) g_clock_skew_ns += kSkewPerProbeNs;
    return real_opendir(name);
}

extern "C" int clock_gettime(clockid_t clock, struct timespec* now) {
    using ClockGetTime = int (*)(clockid_t, struct timespec*);
    static const ClockGetTime real_clock_gettime =
        reinterpret_cast<ClockGetTime>(dlsym(RTLD_NEXT, "clock_gettime"));
    const int rc = real_clock_gettime(clock, now);
    const long long skew = g_clock_skew_ns.load();
    if (rc == 0 && skew != 0) {
        const long long nanoseconds = now->tv_nsec + skew % 1000000000LL;
        now->tv_sec += static_cast<time_t>(skew / 1000000000LL + nanoseconds / 1000000000LL);
        now->tv_nsec = static_cast<long>(nanoseconds % 1000000000LL);
    }
    return rc;
}

static const char kOutputPrecisionKey[] = "KERNELKIT_OUTPUT_PRECISION";

static void finish(int code) {
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(code);
}

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL OUT.blob [KEY=VALUE ...]\n", argv[0]);
        return 2;
    }
    std::map<std::string, std::string> config;
    for (int i = 3; i < argc; ++i) {
        const char* eq = std::strchr(argv[i], '=');
        if (eq == nullptr || eq == argv[i]) {
            std::fprintf(stderr, "bad config entry (want KEY=VALUE): %s\n", argv[i]);
            return 2;
        }
        config[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = std::string(eq + 1);
    }
    bool fp16_outputs = false;
    if (auto it = config.find(kOutputPrecisionKey); it != config.end()) {
        if (it->second != "FP16") {
            std::fprintf(stderr, "bad %s (only FP16 is known): %s\n", kOutputPrecisionKey, it->second.c_str());
            return 2;
        }
        fp16_outputs = true;
        config.erase(it);
    }
    try {
        // Heap objects: never destroyed, see above.
        auto* core = new InferenceEngine::Core(std::string());
        std::string why;
        if (auto extension = framework_layer_extension(why)) {
            core->AddExtension(extension);
        } else {
            std::fprintf(stderr, "[kernelkit] layers of version \"extension\" cannot be compiled: %s\n", why.c_str());
        }
        InferenceEngine::ExecutableNetwork* network = nullptr;
        if (fp16_outputs) {
            using InferenceEngine::Precision;
            auto* model = new InferenceEngine::CNNNetwork(core->ReadNetwork(argv[1], std::string()));
            const Precision fp16(16, "FP16", true, Precision::FP16);
            for (const auto& output : model->getOutputsInfo()) {
                // Integer outputs (S32) keep their type: only float data is carried as fp16.
                if (output.second->getPrecision().value() == Precision::FP32) output.second->setPrecision(fp16);
            }
            network = new InferenceEngine::ExecutableNetwork(core->LoadNetwork(*model, "MYRIAD", config));
        } else {
            network = new InferenceEngine::ExecutableNetwork(core->LoadNetwork(argv[1], "MYRIAD", config));
        }
        network->Export(argv[2]);
    } catch (const std::exception& exc) {
        std::fprintf(stderr, "error: %s\n", exc.what());
        finish(1);
    } catch (...) {
        std::fprintf(stderr, "error: unknown exception from the MYRIAD plugin\n");
        finish(1);
    }
    finish(0);
}
