// myriad_shim: compile a model with the MYRIAD plugin of pip openvino 2021.4.2 and export the blob.
//
//   myriad_shim MODEL(.xml|.onnx) OUT.blob [KEY=VALUE ...]
//
// Exit 0: blob written. Exit 1: the plugin refused the model (its message on stderr, after "error: ").
// Exit 2: usage. The Python API cannot do this (IECore.load_network always creates an infer request,
// which needs a device), hence this program.
//
// No OpenVINO header is used. The few members called here are declared by hand, and each one is an
// exported symbol of the wheel's libinference_engine.so (checked with `nm -D --defined-only | c++filt`):
//   InferenceEngine::Core::Core(std::string const&)
//   InferenceEngine::Core::LoadNetwork(std::string const&, std::string const&, std::map<std::string, std::string> const&)
//   InferenceEngine::ExecutableNetwork::Export(std::string const&)
// The wheel is built with the old libstdc++ string ABI: compile with -D_GLIBCXX_USE_CXX11_ABI=0.
// Core and ExecutableNetwork have no exported destructors (they are inline upstream); the objects below
// are never destroyed and the process ends with _exit, so nothing of the library's teardown runs.

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <map>
#include <string>
#include <sys/types.h>
#include <unistd.h>

namespace InferenceEngine {

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
    ~Core() {}
    ExecutableNetwork LoadNetwork(const std::string& modelPath, const std::string& deviceName,
                                  const std::map<std::string, std::string>& config);

private:
    alignas(16) unsigned char storage_[512];
};

}  // namespace InferenceEngine

// The plugin looks for a device for a fixed 5 s while holding an flock on one machine-wide file, so
// compiles in parallel processes would queue behind each other. With no device to guard, each compile
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
    try {
        // Heap objects: never destroyed, see above.
        auto* core = new InferenceEngine::Core(std::string());
        auto* network = new InferenceEngine::ExecutableNetwork(core->LoadNetwork(argv[1], "MYRIAD", config));
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
