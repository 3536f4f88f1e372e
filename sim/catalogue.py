"""The default category catalogue of a Chinese prefecture city's 12345 hotline.

Shares: Zhengzhou 12345, one week of Nov 2012 (8,480 items, 39 categories): utilities (water, power, gas,
heating) were the largest at 12.8%, followed by city management and public order (zhengzhou.gov.cn; S5);
the remaining shares are assumptions spread over the usual hotline headings. Consultation shares:
prefecture hotlines report consultations at 47–64% of items (Tangshan 2024; S12); the shares below make
about 59% of reported items consultations (Beijing 12345 2019–21: enquiries 58.5%; S11), so that with the
default direct-answer share about 53% are answered at intake (target T5: 50–60%). Deadlines: Shandong 2020
and online-inquiry rules (consultation/suggestion 5 working days, complaint 7, cap 15; S15, S16); utilities
answered within a day (Beijing practice, [weak]; S10). Source ids S1–S26 are those of docs/sources.md. Severity, difficulty and service times are assumptions, calibrated
against the targets in ``python run.py validate``.

Each category names the level whose department handles it; the department type is the category itself
(one functional bureau per heading, with counterparts at the levels between the prefecture and that level).
Two headings lie above the prefecture's authority (assumption: no published split of a prefecture hotline's
items by the level of government that must answer them was found): ``provincial_affairs`` (provincial agencies,
expressways, provincial hospitals and universities; 2.0%, handled by the province) and ``telecom_post``
(centrally managed telecoms, post and railways; 2.5%, handled at central level). Their 4.5 points were taken
from transport (−2.0: railway and expressway matters) and housing (−2.5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Category

# name: (share, severity, difficulty, jurisdiction, consultation_share, median_h, sigma, deadline_days, enterprise_weight)
_ROWS: dict[str, tuple[Any, ...]] = {
    "utilities":              (0.128, 0.70, 0.25, "prefecture", 0.42, 12.0, 1.0, 1.0, 1.5),
    "city_management":        (0.120, 0.50, 0.30, "township",   0.47, 24.0, 1.0, 5.0, 1.0),
    "public_order":           (0.090, 0.60, 0.35, "township",   0.47, 24.0, 1.0, 5.0, 0.8),
    "housing":                (0.075, 0.60, 0.50, "county",     0.67, 48.0, 1.0, 7.0, 0.5),
    "transport":              (0.070, 0.50, 0.35, "prefecture", 0.67, 36.0, 1.0, 5.0, 1.2),
    "environment":            (0.070, 0.60, 0.45, "county",     0.52, 48.0, 1.0, 7.0, 1.5),
    "market_regulation":      (0.080, 0.50, 0.30, "county",     0.62, 36.0, 1.0, 7.0, 3.0),
    "labour_social_security": (0.100, 0.60, 0.40, "county",     0.72, 48.0, 1.0, 7.0, 1.5),
    "education":              (0.060, 0.50, 0.30, "county",     0.77, 36.0, 1.0, 5.0, 0.3),
    "health":                 (0.060, 0.60, 0.35, "county",     0.77, 36.0, 1.0, 5.0, 0.5),
    "land_planning":          (0.040, 0.60, 0.70, "prefecture", 0.57, 96.0, 1.0, 15.0, 2.0),
    "rural_affairs":          (0.040, 0.50, 0.40, "township",   0.57, 48.0, 1.0, 7.0, 0.5),
    "provincial_affairs":     (0.020, 0.55, 0.50, "province",   0.60, 72.0, 1.0, 10.0, 1.2),
    "telecom_post":           (0.025, 0.50, 0.35, "central",    0.60, 48.0, 1.0, 7.0, 1.0),
}


def default_categories() -> dict[str, Category]:
    """A fresh copy of the default catalogue (name -> Category)."""
    from .scenario import Category

    out = {}
    for name, (share, sev, diff, level, consult, med, sig, dl, ent) in _ROWS.items():
        out[name] = Category(
            share=share, severity=sev, difficulty=diff, jurisdiction=level, consultation_share=consult,
            service_time_median_h=med, service_time_sigma=sig, deadline_working_days=dl, enterprise_weight=ent)
    return out
