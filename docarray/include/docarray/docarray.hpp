#pragma once
// Everything of the docarray layer in one include.
#include "docarray/binary_io.hpp"
#include "docarray/document.hpp"
#include "docarray/document_array.hpp"
#include "docarray/document_file.hpp"
#include "docarray/dtype.hpp"
#include "docarray/error.hpp"
#include "docarray/evaluate.hpp"
#include "docarray/jsonl_io.hpp"
#include "docarray/match.hpp"
#include "docarray/metrics.hpp"
#include "docarray/summary.hpp"
#include "docarray/value.hpp"
