// Target-independent parts of the kernels: the run-time choice of SIMD target, the
// public entry points (run, generated from ops.inc) that forward to it, row layouts and
// thread settings.  Compiled once, without target flags.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
#include <omp.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "float_env.hpp"
#include "gumbel_softmax/kernels.hpp"
#include "table.hpp"

namespace gumbel_softmax {
namespace {

struct Target {
  const char* name;
  void (*fill)(KernelTable&);
  bool (*supported)();
};

bool always() { return true; }
#if defined(GS_HAVE_AVX2)
bool cpu_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("bmi2");
}
#endif
#if defined(GS_HAVE_AVX512)
bool cpu_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("fma");
}
#endif

// Compiled targets, best last.  (libgcc's CPU check includes the OS's XSAVE support.)
const std::vector<Target>& compiled() {
  static const std::vector<Target> t = {
      {"baseline", &baseline::fill_table, &always},
#if defined(GS_HAVE_AVX2)
      {"avx2", &avx2::fill_table, &cpu_avx2},
#endif
#if defined(GS_HAVE_AVX512)
      {"avx512", &avx512::fill_table, &cpu_avx512},
#endif
  };
  return t;
}

struct Active {
  KernelTable table;
  const char* name = "baseline";
  std::string warning;
  Active() {
    const auto& all = compiled();
    const Target* pick = &all[0];
    for (const auto& t : all)
      if (t.supported()) pick = &t;
    if (const char* env = std::getenv("GUMBEL_SOFTMAX_TARGET"); env && *env) {
      const Target* forced = nullptr;
      for (const auto& t : all)
        if (std::string(env) == t.name) forced = &t;
      if (forced && forced->supported()) {
        pick = forced;
      } else {
        warning = std::string("GUMBEL_SOFTMAX_TARGET=") + env +
                  (forced ? " is not supported by this CPU" : " is not a compiled target") +
                  "; using " + pick->name;
      }
    }
    pick->fill(table);
    name = pick->name;
  }
};

const Active& active() {
  static const Active a;  // thread-safe initialisation (C++11 magic statics)
  return a;
}

// Process-wide thread count set by set_max_threads; 0 follows OpenMP's own setting
// (OMP_NUM_THREADS, threadpoolctl) of the calling thread.
std::atomic<int> g_num_threads{0};
std::atomic<int> g_last_team{0};

// The most threads a call uses, per processor available to the process (OpenMP's
// omp_get_num_procs, which follows the CPU affinity mask): more would only queue on
// the same cores, and a count in the thousands can exceed the process limit, where
// GNU OpenMP ends the process ("Thread creation failed") instead of reporting it.
constexpr int kThreadsPerProcessor = 4;

// Set in the child of a fork() (any fork of a process that has loaded the module): GNU
// OpenMP's pool belongs to the parent, whose workers do not exist in the child, so a
// parallel region in the child would wait for them forever.  The child runs every
// call on its calling thread instead (same results: they never depend on threads).
std::atomic<bool> g_forked{false};
void after_fork_child() { g_forked.store(true, std::memory_order_relaxed); }

std::atomic<InterruptHook> g_interrupt_hook{nullptr};
// The interrupt state of the call running on this thread (see begin_call).
using PollClock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollPeriod{50};
thread_local PollClock::time_point t_next_poll{};
thread_local bool t_interrupted = false;

}  // namespace

const char* cpu_target() { return active().name; }
const std::string& target_warning() { return active().warning; }

std::vector<std::string> cpu_targets() {
  std::vector<std::string> names;
  for (const auto& t : compiled())
    if (t.supported()) names.emplace_back(t.name);
  return names;
}

// The public entry points forward to the active target's table.
// Every kernel runs in the IEEE environment (float_env.hpp), whatever the caller's.
#define GS_OP(name, Args)           \
  void run(const Args<float>& a) {  \
    const IeeeScope ieee;           \
    active().table.f32.name(a);     \
  }                                 \
  void run(const Args<double>& a) { \
    const IeeeScope ieee;           \
    active().table.f64.name(a);     \
  }
#define GS_OP_UNTYPED(name, Args) \
  void run(const Args& a) {       \
    const IeeeScope ieee;         \
    active().table.name(a);       \
  }
#include "gumbel_softmax/ops.inc"
#undef GS_OP
#undef GS_OP_UNTYPED

int64_t masked_row_limit(int itemsize) { return (int64_t{4} << 20) / (16 * itemsize); }

RowSpec make_rowspec(int ndim, const int64_t* shape, const int64_t* strides, int axis) {
  RowSpec s;
  s.len = shape[axis];
  s.step = strides[axis];
  s.nrows = 1;
  for (int d = 0; d < ndim; ++d) {
    if (d == axis) continue;
    s.nrows *= shape[d];
    if (shape[d] == 1) continue;  // contributes nothing to the offset
    if (s.nbatch > 0 && s.stride[s.nbatch - 1] == strides[d] * shape[d]) {
      // merges with the previous batch dimension
      s.shape[s.nbatch - 1] *= shape[d];
      s.stride[s.nbatch - 1] = strides[d];
    } else {
      s.shape[s.nbatch] = shape[d];
      s.stride[s.nbatch] = strides[d];
      ++s.nbatch;
    }
  }
  if (s.nrows == 0) s.nbatch = 0;
  return s;
}

int thread_limit() {
#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
  return kThreadsPerProcessor * std::max(1, omp_get_num_procs());
#else
  // set_num_threads is accepted and has no effect: the same limit on what it accepts
  return kThreadsPerProcessor * std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
#endif
}

int max_threads() {
#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
  if (g_forked.load(std::memory_order_relaxed)) return 1;
  const int n = g_num_threads.load(std::memory_order_relaxed);
  // OMP_THREAD_LIMIT caps what a parallel region really gets (omp_get_max_threads does
  // not include it): the count reported and planned for is the team a call can have
  return std::min({n > 0 ? n : omp_get_max_threads(), thread_limit(), omp_get_thread_limit()});
#else
  return 1;
#endif
}

void install_fork_handler() {
#if !defined(_WIN32)
  static const int registered = pthread_atfork(nullptr, nullptr, &after_fork_child);
  (void)registered;
#endif
}

bool in_fork_child() { return g_forked.load(std::memory_order_relaxed); }

void set_interrupt_hook(InterruptHook hook) { g_interrupt_hook.store(hook); }

void begin_call() {
  t_interrupted = false;
  t_next_poll = PollClock::time_point{};  // set at the call's first clock read
}

void begin_call_unpolled() {
  t_interrupted = false;
  t_next_poll = PollClock::time_point::max();  // never reached: no poll
}

bool poll_interrupt(PollClock::time_point now) {
  if (t_interrupted) return true;
  if (t_next_poll == PollClock::time_point{}) t_next_poll = now + kPollPeriod;
  if (now < t_next_poll) return false;
  t_next_poll = now + kPollPeriod;
  const InterruptHook hook = g_interrupt_hook.load(std::memory_order_relaxed);
  t_interrupted = hook != nullptr && hook();
  return t_interrupted;
}

bool interrupted() { return t_interrupted; }

void note_team_size(int n) { g_last_team.store(n, std::memory_order_relaxed); }
int last_team_size() { return g_last_team.load(std::memory_order_relaxed); }

void set_max_threads(int n) { g_num_threads.store(n > 0 ? n : 0, std::memory_order_relaxed); }

bool have_openmp() {
#ifdef GUMBEL_SOFTMAX_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace gumbel_softmax
