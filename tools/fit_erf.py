#!/usr/bin/env python3
"""The rational fit of erf that kernels::erf_float uses (include/minigrad/ops/unary.hpp):
erf(x) ~ x P(x^2) / Q(x^2) on [0, 4], P of degree 6 and Q of degree 5 with Q(0) = 1, by linearised
least squares on Chebyshev points, reweighted by 1/|Q| a dozen times; then evaluated in float32 as
the C++ does (Horner) to print its largest error against math.erf.
Run with Debian's numpy: /usr/bin/python3 tools/fit_erf.py
"""
import numpy as np, math
# fit erf(x) ~ x * P(t) / Q(t), t = x^2, on [0, X]; Q(0) = 1. Linearised least squares, then reweighted (Loeb)
X = 4.0
for (np_, nq) in [(6,5)]:
    xs = X * (0.5 - 0.5*np.cos(np.linspace(0, math.pi, 4000)))
    xs = xs[1:]
    f = np.array([math.erf(x) for x in xs])
    t = xs**2
    w = np.ones_like(xs)
    for it in range(12):
        # f*Q(t) - x*P(t) = 0 -> f*(1 + q1 t + ...) = x*(p0 + p1 t + ...)
        A = np.hstack([ (xs[:,None] * t[:,None]**np.arange(np_+1)), -(f[:,None] * t[:,None]**np.arange(1,nq+1)) ])
        b = f
        sol, *_ = np.linalg.lstsq(A * w[:,None], b * w, rcond=None)
        p = sol[:np_+1]; q = np.concatenate([[1.0], sol[np_+1:]])
        Q = np.polyval(q[::-1], t)
        w = 1/np.abs(Q)
    # evaluate in float32 with Horner
    def ev(x):
        x = np.float32(x); tt = x*x
        P = np.float32(p[-1])
        for c in p[-2::-1]: P = P*tt + np.float32(c)
        Qv = np.float32(q[-1])
        for c in q[-2::-1]: Qv = Qv*tt + np.float32(c)
        return np.float32(x*P/Qv)
    xt = np.linspace(0, X, 200001, dtype=np.float32)
    approx = np.array([ev(x) for x in xt[::10]])
    exact = np.array([math.erf(float(x)) for x in xt[::10]])
    err = np.abs(approx - exact)
    ulp = err / np.spacing(np.abs(exact).astype(np.float32) + np.float32(1e-30))
    print(np_, nq, "max abs err", err.max(), "max ulp", ulp[1:].max(), "Q min", Q.min())
    print("p (constant first)", [repr(float(v)) for v in p]); print("q (constant first)", [repr(float(v)) for v in q])
