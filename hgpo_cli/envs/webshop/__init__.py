"""WebShop (Yao et al., 2022) inside the project: the same pages, actions and reward, on the real WebShop
files when `env.webshop.data_dir` names them, else on a generated catalogue. See docs/webshop.md."""
