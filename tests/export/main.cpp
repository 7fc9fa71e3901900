#define BOOST_TEST_MODULE export
#include <boost/test/unit_test.hpp>

#include "../support/clean_environment.hpp"
