// The Python module ffn_ext._C: entry points for the element-wise, gating and projection ops that
// call them through the C++ dispatcher without torch.ops' argument parsing. Only the Python
// extension built by setup.py has this file (CMakeLists.txt leaves csrc/python/ out: C++ users
// call the dispatcher).
//
// Why: at decode sizes these ops take less GPU time than Python takes to call them. torch.ops
// matches the arguments against the op's schema on every call: 1.2 us of a 2.5 us call here
// (torch.ops.aten.mul.Tensor 2.43 us against torch.mul's own binding 1.24 us, CPU tensors of 8
// elements, 2-core x86 machine, torch 2.14.1, 2026-11-26), and on the H100 machine the
// silu_and_mul call from Python took 0.68 of eager's two-kernel call and 10-16 us (2026-11-26).
//
// Each function takes its arguments by position and exactly as the Python wrappers in ffn_ext/ pass
// them (an out= tensor last). It returns NotImplemented, having done nothing, for anything it does
// not take: a tensor subclass or a torch function mode (these need torch.ops' __torch_function__
// handling), an argument of another type, a wrong count. The wrapper then goes through torch.ops,
// which checks the arguments and raises its errors. Everything else (autograd, autocast, fake
// tensors, dispatch modes, the profiler) is the dispatcher's and works as through torch.ops.
// torch.compile never sees these functions: the wrappers call torch.ops while compiling.
#include <Python.h>

#include <ATen/PythonTorchFunctionTLS.h>
#include <ATen/core/Tensor.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include <optional>
#include <tuple>
#include <utility>

#include "ffn_ext/op_support.h"

namespace {

using at::Tensor;
using Str = c10::string_view;

// A plain torch.Tensor (not a subclass), with no torch function mode active.
bool tensor_arg(PyObject* o, const Tensor** t) {
  if (!THPVariable_CheckExact(o) || at::impl::torch_function_mode_enabled()) return false;
  *t = &THPVariable_Unpack(o);
  return true;
}

// None, or a tensor as tensor_arg takes it.
bool optional_tensor_arg(PyObject* o, std::optional<Tensor>* t) {
  if (o == Py_None) return true;
  const Tensor* p;
  if (!tensor_arg(o, &p)) return false;
  *t = *p;
  return true;
}

bool str_arg(PyObject* o, Str* s) {
  if (!PyUnicode_CheckExact(o)) return false;
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(o, &n);
  if (p == nullptr) {
    PyErr_Clear();
    return false;
  }
  *s = Str(p, static_cast<size_t>(n));
  return true;
}

// A float, or an int (not a bool) that a double holds.
bool real_arg(PyObject* o, double* v) {
  if (PyFloat_CheckExact(o)) {
    *v = PyFloat_AS_DOUBLE(o);
    return true;
  }
  if (!PyLong_CheckExact(o)) return false;
  *v = PyLong_AsDouble(o);
  if (*v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  return true;
}

// The GIL is released while the op runs, as torch.ops and torch's own bindings do; the dispatcher
// takes it back for any Python kernel (fake tensors, dispatch modes).
struct ReleaseGil {
  PyThreadState* state = PyEval_SaveThread();
  ~ReleaseGil() { PyEval_RestoreThread(state); }
};

// The arguments are copied first: the tensors' references are borrowed from their Python objects,
// which another thread may change once the GIL is released (torch.utils.swap_tensors refused to swap
// a tensor in use by torch.ops, which holds its arguments, and swapped one in use here). A copy of
// a tensor is a reference count; of the rest, a value. (An out= operand is passed as the op's
// mutable handle to that copy, which shares out's TensorImpl.)
template <class Op, class... Args>
PyObject* call(const Op& op, const Args&... args) {
  Tensor r;
  {
    std::tuple<Args...> owned(args...);
    ReleaseGil released;
    r = std::apply([&op](Args&... a) { return op.call(a...); }, owned);
  }
  return THPVariable_Wrap(std::move(r));
}

// gelu(x, approximate)
PyObject* gelu(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor* x;
  Str approximate;
  if (n != 2 || !tensor_arg(a[0], &x) || !str_arg(a[1], &approximate)) Py_RETURN_NOTIMPLEMENTED;
  FFN_OP(op, "gelu", "", Tensor(const Tensor&, Str));
  return call(op, *x, approximate);
  END_HANDLE_TH_ERRORS
}

// silu(x), relu(x)
template <const char* kName>
PyObject* unary(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor* x;
  if (n != 1 || !tensor_arg(a[0], &x)) Py_RETURN_NOTIMPLEMENTED;
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(kName, "")
                             .typed<Tensor(const Tensor&)>();
  return call(op, *x);
  END_HANDLE_TH_ERRORS
}
constexpr char kSilu[] = "ffn_ext::silu";
constexpr char kRelu[] = "ffn_ext::relu";

// swish(x, beta) with a number beta
PyObject* swish(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor* x;
  double beta;
  if (n != 2 || !tensor_arg(a[0], &x) || !real_arg(a[1], &beta)) Py_RETURN_NOTIMPLEMENTED;
  FFN_OP(op, "swish", "", Tensor(const Tensor&, double));
  return call(op, *x, beta);
  END_HANDLE_TH_ERRORS
}

// act_and_mul(gate, up, activation, beta)
PyObject* act_and_mul(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor *gate, *up;
  Str activation;
  double beta;
  if (n != 4 || !tensor_arg(a[0], &gate) || !tensor_arg(a[1], &up) ||
      !str_arg(a[2], &activation) || !real_arg(a[3], &beta))
    Py_RETURN_NOTIMPLEMENTED;
  FFN_OP(op, "act_and_mul", "", Tensor(const Tensor&, const Tensor&, Str, double));
  return call(op, *gate, *up, activation, beta);
  END_HANDLE_TH_ERRORS
}

// act_and_mul_packed(h, activation, beta, out): out None, or a tensor for the .out overload
// (vLLM's silu_and_mul(out, x) calls at decode sizes), as the Python wrappers take it. Returns what
// the op returns, as torch.ops does: with out, out itself (its Python object), unless a dispatch
// mode returns another tensor.
PyObject* act_and_mul_packed(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor *h, *out = nullptr;
  Str activation;
  double beta;
  if (n != 4 || !tensor_arg(a[0], &h) || !str_arg(a[1], &activation) || !real_arg(a[2], &beta) ||
      (a[3] != Py_None && !tensor_arg(a[3], &out)))
    Py_RETURN_NOTIMPLEMENTED;
  if (out == nullptr) {
    FFN_OP(op, "act_and_mul_packed", "", Tensor(const Tensor&, Str, double));
    return call(op, *h, activation, beta);
  }
  FFN_OP(op, "act_and_mul_packed", "out", Tensor&(const Tensor&, Str, double, Tensor&));
  return call(op, *h, activation, beta, *out);
  END_HANDLE_TH_ERRORS
}

// gated_linear(x, w1, w3, b1, b3, activation, beta): ffn_ext.swiglu and its siblings. At decode
// sizes its GEMMs outlast the call, but a call that reaches its first GEMM later leaves the GPU
// idle for as long when nothing is queued ahead of it.
PyObject* gated_linear(PyObject*, PyObject* const* a, Py_ssize_t n) {
  HANDLE_TH_ERRORS
  const Tensor *x, *w1, *w3;
  std::optional<Tensor> b1, b3;
  Str activation;
  double beta;
  if (n != 7 || !tensor_arg(a[0], &x) || !tensor_arg(a[1], &w1) || !tensor_arg(a[2], &w3) ||
      !optional_tensor_arg(a[3], &b1) || !optional_tensor_arg(a[4], &b3) ||
      !str_arg(a[5], &activation) || !real_arg(a[6], &beta))
    Py_RETURN_NOTIMPLEMENTED;
  FFN_OP(op, "gated_linear", "",
         Tensor(const Tensor&, const Tensor&, const Tensor&, const std::optional<Tensor>&,
                const std::optional<Tensor>&, Str, double));
  return call(op, *x, *w1, *w3, b1, b3, activation, beta);
  END_HANDLE_TH_ERRORS
}

#define FFN_FAST(name, fn, args) \
  { name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fn)), METH_FASTCALL, args }

PyMethodDef kMethods[] = {
    FFN_FAST("gelu", gelu, "gelu(x, approximate)"),
    FFN_FAST("silu", unary<kSilu>, "silu(x)"),
    FFN_FAST("relu", unary<kRelu>, "relu(x)"),
    FFN_FAST("swish", swish, "swish(x, beta), beta a number"),
    FFN_FAST("act_and_mul", act_and_mul, "act_and_mul(gate, up, activation, beta)"),
    FFN_FAST("act_and_mul_packed", act_and_mul_packed,
             "act_and_mul_packed(h, activation, beta, out), out None or a tensor"),
    FFN_FAST("gated_linear", gated_linear, "gated_linear(x, w1, w3, b1, b3, activation, beta)"),
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_C",
                       "ffn_ext's compiled library; its functions are the ops' fast Python calls "
                       "(NotImplemented: use torch.ops.ffn_ext).",
                       -1, kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__C() { return PyModule_Create(&kModule); }
