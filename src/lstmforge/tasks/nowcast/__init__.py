"""Precipitation nowcasting with a ConvLSTM encoder-forecaster (Shi et al., NIPS 2015).

Named configurations (:mod:`.configs`), data (:mod:`.data`), the Lightning module
(:mod:`.module`), training (:mod:`.train`), evaluation with persistence and optical-flow
baselines (:mod:`.evaluate`, :mod:`.baselines`), the plain prediction API and pysteps-ready
export (:mod:`.predict`), and pictures (:mod:`.plots`).
"""
