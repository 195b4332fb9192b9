"""AIR-Nets and its baselines: surface meshes from point clouds. The calls a user needs are offered here and imported
on first use (PEP 562), so `import airnets` imports neither torch nor the models. Written by hand (nbdev keeps only the
version line current); the functions live in airnets.api (nbs/003_api.ipynb)."""
__version__ = "0.0.1"

API = ('reconstruct', 'load_model', 'evaluate_mesh')  # airnets.api's calls, resolved on first use
__all__ = ['__version__', *API]

def __getattr__(name):
    if name in API:
        from . import api
        globals()[name] = value = getattr(api, name)
        return value
    raise AttributeError(f"module 'airnets' has no attribute {name!r}")

def __dir__(): return sorted({*globals(), *API})
