"""pipeline/lineage/report.py: the summary comes before the statistics, and
counts read as whole numbers."""
from __future__ import annotations

import re

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline.lineage.report import feature_chart, feature_row, report_html
from pipeline.lineage.store import open_store_from


def numeric_feature() -> statistics_pb2.FeatureNameStatistics:
    f = statistics_pb2.FeatureNameStatistics(
        name="fare", type=statistics_pb2.FeatureNameStatistics.FLOAT)
    s = f.num_stats
    s.common_stats.num_non_missing = 1234567
    s.common_stats.num_missing = 0
    s.mean, s.std_dev, s.min, s.max = 12345.678, 0.5, 0.0, 2.5e6
    hist = s.histograms.add(type=statistics_pb2.Histogram.STANDARD)
    for low, count in ((0, 35.7), (10, 3571.2)):
        hist.buckets.add(low_value=low, high_value=low + 10, sample_count=count)
    return f


def test_counts_and_statistics_have_no_scientific_notation_or_fractions():
    row = feature_row(numeric_feature())
    assert row[2] == "1,234,567"
    assert row[4:8] == ["12,345.7", "0.5", "0", "2,500,000"]
    chart = feature_chart(numeric_feature())
    assert ">36<" in chart and ">3,571<" in chart
    assert "35.7" not in chart and "e+" not in chart
    tract = numeric_feature()
    tract.num_stats.histograms[0].buckets[0].low_value = 17031081500.0
    assert ">17,031,081,500..10<" in feature_chart(tract)


@pytest.mark.e2e
def test_the_summary_comes_before_the_statistics(lineage_runs):
    text = report_html(open_store_from(lineage_runs.root), lineage_runs.run_ids[0])
    order = [text.index(h) for h in ("<h2>Summary</h2>", "BLESSED: every threshold met",
                                     "<h3>Metrics on the eval split",
                                     "<h2>Fairness against the bounds</h2>",
                                     "<h2>Data statistics</h2>", "<h2>Lineage</h2>")]
    assert order == sorted(order)
    assert not re.search(r"\d\.\d+e[+-]\d", text.split("<h2>Lineage</h2>")[0])
