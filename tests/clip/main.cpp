#define BOOST_TEST_MODULE clip
#include <boost/test/unit_test.hpp>
